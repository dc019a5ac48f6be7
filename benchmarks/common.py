"""Pieces both sides share: the solve criterion, peak memory, and the settings measured.

Nothing here imports TensorFlow or torch, so the orchestrator can use it too.
"""

import resource
import sys
from collections import deque

SOLVE_THRESHOLD = 475.0
"""CartPole-v1 counts as solved when the rolling mean of training returns reaches this."""

SOLVE_WINDOW = 20
"""Number of most recent training episodes in the rolling mean."""

# RL Zoo's tuned CartPole-v1 PPO settings (hyperparams/ppo.yml), shared by both sides.
ZOO = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
           learning_rate=1e-3, clip_range=0.2, ent_coef=0.0, n_timesteps=100_000)

# The founding tutorial's cycle: 12 workers x 512 steps, drill(., 3, 64).
TUTORIAL = dict(workers=12, horizon=512, epochs=3, batch_size=64)


class SolveTracker:
    """Follows training episode returns and says when the rolling mean reaches the threshold.

    Each finished episode is recorded with the wall time (seconds since learning began)
    and the env step count at which it was seen, so a curve of return against time can be
    drawn for any framework.
    """

    def __init__(self, threshold: float = SOLVE_THRESHOLD, window: int = SOLVE_WINDOW):
        self.threshold = threshold
        self.window = window
        self._recent = deque(maxlen=window)
        self.curve = []  # (seconds, steps, episode return, rolling mean)
        self.solved_at = None  # (seconds, steps, cpu seconds) when the criterion first held

    def add(self, episode_return: float, seconds: float, steps: int, cpu_seconds: float = None) -> bool:
        """Record one finished training episode; returns True once solved.

        `seconds` is wall time since learning began, `cpu_seconds` the process's CPU time
        over the same span (robust to other load on the machine).
        """
        self._recent.append(float(episode_return))
        rolling = sum(self._recent) / len(self._recent)
        self.curve.append((float(seconds), int(steps), float(episode_return), rolling))
        if (self.solved_at is None and len(self._recent) == self.window
                and rolling >= self.threshold):
            self.solved_at = (float(seconds), int(steps), cpu_seconds)
        return self.solved

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    def result(self, seconds: float, steps: int, cpu_seconds: float = None) -> dict:
        """The figures one solve run reports (time/steps are None when never solved)."""
        return {
            "solved": self.solved,
            "seconds_to_solve": self.solved_at[0] if self.solved else None,
            "steps_to_solve": self.solved_at[1] if self.solved else None,
            "cpu_seconds_to_solve": self.solved_at[2] if self.solved else None,
            "learn_seconds": float(seconds),
            "learn_cpu_seconds": cpu_seconds,
            "learn_steps": int(steps),
            "episodes": len(self.curve),
            "curve": self.curve,
        }


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def median(values):
    """Median that keeps ``inf`` (an unsolved run) instead of failing; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
