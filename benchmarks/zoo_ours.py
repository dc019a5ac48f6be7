"""dexterity_nb side of ``python -m benchmarks.zoo``. Imported only inside a measuring subprocess.

``train`` builds an agent from a preset of :mod:`dexterity_nb.presets`, drills it for the
preset's frame budget in one ``drill`` call (so that a linear learning-rate schedule spans the
whole budget, as the CLI does), and evaluates the final policy deterministically.
"""

import math
import time

import numpy as np

from .common import peak_rss_bytes
from .limits import current_threads, limit_tensorflow


def _cycle_clock():
    """A drill callback noting wall and CPU seconds at the end of every cycle (since drill began)."""
    from dexterity_nb.agent.callbacks import Callback

    class CycleClock(Callback):
        def __init__(self):
            self.wall, self.cpu, self.frames = [], [], []

        def on_drill_begin(self, agent):
            self._start, self._cpu_start = time.perf_counter(), time.process_time()

        def on_cycle_end(self, agent, stats):
            self.wall.append(time.perf_counter() - self._start)
            self.cpu.append(time.process_time() - self._cpu_start)
            self.frames.append(int(stats["frames"]))

    return CycleClock()


def train(env_id: str, seed: int, preset: dict, frames: int | None = None, slice_frames: int = 200_000,
          eval_episodes: int = 20) -> dict:
    """Train ``preset`` on ``env_id`` for ``frames`` (default: its budget), then evaluate.

    Args:
        preset: a preset dict (schema of :mod:`dexterity_nb.presets`), sent by the orchestrator
            so that a changed preset (``--set``) is measured exactly as printed.
        slice_frames: the first frames over which seconds per frame are reported (to compare with
            Stable-Baselines3's run of the same length); whole cycles, at least one.
        eval_episodes: deterministic evaluation episodes at the end, frozen normalisation.

    Returns:
        evaluation returns, frames used, wall/CPU seconds of the drill, seconds per frame over the
        first slice, per-cycle mean training returns, and the peak RSS.
    """
    import tensorflow  # noqa: F401  (imported before the limits are applied)

    limit_tensorflow(current_threads())
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    frames = int(preset["frames"] if frames is None else frames)
    agent_kwargs = dict(preset["agent"])
    cycle_frames = agent_kwargs["horizon"] * agent_kwargs["workers"]
    cycles = max(1, math.ceil(frames / cycle_frames))
    env = make_env(env_id, transformers=preset["transformers"])
    agent = PPOAgent(get_model_builder("simple", "ffn"), env, seed=seed, verbose=False, **agent_kwargs)
    clock = _cycle_clock()
    agent.drill(cycles, preset["drill"]["epochs"], preset["drill"]["batch_size"], callbacks=[clock], verbose=False)
    evaluation = agent.evaluate(eval_episodes, deterministic=True)

    slice_cycles = max(1, min(len(clock.wall), math.ceil(slice_frames / cycle_frames)))
    training_returns = [r for h in agent.history for r in h["episode_returns"]]
    return {
        "env_id": env_id,
        "seed": seed,
        "frames": clock.frames[-1],
        "cycles": len(clock.wall),
        "learn_seconds": clock.wall[-1],
        "learn_cpu_seconds": clock.cpu[-1],
        "slice_frames": clock.frames[slice_cycles - 1],
        "slice_seconds": clock.wall[slice_cycles - 1],
        "slice_cpu_seconds": clock.cpu[slice_cycles - 1],
        "eval_returns": [float(r) for r in evaluation.returns],
        "eval_mean": float(np.mean(evaluation.returns)),
        "last20_training_mean": float(np.mean(training_returns[-20:])) if training_returns else None,
        "training_episodes": len(training_returns),
        "cycle_mean_returns": [None if math.isnan(h["mean_return"]) else float(h["mean_return"])
                               for h in agent.history],
        "cycle_frames": clock.frames,
        "peak_rss_bytes": peak_rss_bytes(),
    }
