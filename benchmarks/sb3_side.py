"""Stable-Baselines3 measurements. Imported only inside a measuring subprocess.

Each function returns a JSON-serialisable dict; `benchmarks.worker` runs one per process.
"""

import time

import numpy as np

from .common import SOLVE_THRESHOLD, SOLVE_WINDOW, TUTORIAL, ZOO, SolveTracker, peak_rss_bytes
from .limits import current_threads, limit_torch


class LinearDecay:
    """SB3 schedule going linearly from `initial` (progress 1) to 0 (progress 0), as RL Zoo's `lin_`."""

    def __init__(self, initial: float):
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial


def _imports():
    limit_torch(current_threads())
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    return PPO, BaseCallback, make_vec_env, VecNormalize


SOLVED_LINE = "solved"
"""What `solve(..., announce=True)` prints (alone on a line, flushed) the moment the criterion holds."""


def solve(seed: int, budget_steps: int = ZOO["n_timesteps"], threshold: float = SOLVE_THRESHOLD,
          window: int = SOLVE_WINDOW, announce: bool = False) -> dict:
    """Train with the RL Zoo settings until the rolling mean of training returns reaches `threshold`.

    The clock covers only `model.learn()`; the callback reads each finished training
    episode from the Monitor wrapper's ``info["episode"]`` and stops learning at solve.
    The linear schedules decay over `budget_steps` (the Zoo's 1e5 in a full run).
    With `announce`, :data:`SOLVED_LINE` is printed at that moment, so that a parent process can
    time this process from its start (imports included) to the solve (``benchmarks.start_to_solved``).
    """
    PPO, BaseCallback, make_vec_env, _ = _imports()
    tracker = SolveTracker(threshold, window)

    class StopAtSolve(BaseCallback):
        start = cpu_start = 0.0

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                episode = info.get("episode")
                if episode is not None:
                    if tracker.add(episode["r"], time.perf_counter() - self.start, self.num_timesteps,
                                   time.process_time() - self.cpu_start) and announce:
                        print(SOLVED_LINE, flush=True)
                        break
            return not tracker.solved

    env = make_vec_env("CartPole-v1", n_envs=ZOO["n_envs"], seed=seed)
    model = PPO("MlpPolicy", env, n_steps=ZOO["n_steps"], batch_size=ZOO["batch_size"],
                n_epochs=ZOO["n_epochs"], gamma=ZOO["gamma"], gae_lambda=ZOO["gae_lambda"],
                learning_rate=LinearDecay(ZOO["learning_rate"]),
                clip_range=LinearDecay(ZOO["clip_range"]), ent_coef=ZOO["ent_coef"],
                seed=seed, device="cpu", verbose=0)
    callback = StopAtSolve()
    callback.cpu_start = cpu_start = time.process_time()
    callback.start = start = time.perf_counter()
    model.learn(total_timesteps=budget_steps, callback=callback)
    seconds = time.perf_counter() - start
    result = tracker.result(seconds, model.num_timesteps, time.process_time() - cpu_start)
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def cycle(seed: int = 0, iterations: int = 6, workers: int = TUTORIAL["workers"],
          horizon: int = TUTORIAL["horizon"], epochs: int = TUTORIAL["epochs"],
          batch_size: int = TUTORIAL["batch_size"]) -> dict:
    """Seconds per PPO iteration doing the tutorial's work (workers x horizon steps, epochs, batch).

    Observations are normalised with VecNormalize (rewards not), as the tutorial's
    StateNormalizationTransformer does on our side. An iteration is one rollout plus one
    `train()`; it is timed from one rollout start to the next (the last one to the end
    of `learn()`). The first iteration is reported but left out of the median.
    """
    PPO, BaseCallback, make_vec_env, VecNormalize = _imports()
    marks = {"rollout_start": [], "rollout_end": [], "cpu": []}

    class Timer(BaseCallback):
        def _on_rollout_start(self) -> None:
            marks["rollout_start"].append(time.perf_counter())
            marks["cpu"].append(time.process_time())

        def _on_rollout_end(self) -> None:
            marks["rollout_end"].append(time.perf_counter())

        def _on_step(self) -> bool:
            return True

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=workers, seed=seed),
                       norm_obs=True, norm_reward=False)
    model = PPO("MlpPolicy", env, n_steps=horizon, batch_size=batch_size, n_epochs=epochs,
                seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=workers * horizon * iterations, callback=Timer())
    end, cpu_end = time.perf_counter(), time.process_time()
    cpu = [b - a for a, b in zip(marks["cpu"], marks["cpu"][1:] + [cpu_end])]
    starts = marks["rollout_start"]
    rollout_ends = marks["rollout_end"]
    boundaries = starts[1:] + [end]
    seconds = [b - a for a, b in zip(starts, boundaries)]
    gather = [b - a for a, b in zip(starts, rollout_ends)]
    optimize = [b - a for a, b in zip(rollout_ends, boundaries)]
    measured = slice(1, None) if len(seconds) > 1 else slice(None)
    return {
        "frames_per_cycle": workers * horizon,
        "updates_per_cycle": epochs * int(np.ceil(workers * horizon / batch_size)),
        "cycle_seconds": seconds,
        "cycle_cpu_seconds": cpu,
        "gather_seconds": gather,
        "optimize_seconds": optimize,
        "median_cycle_seconds": float(np.median(seconds[measured])),
        "median_cycle_cpu_seconds": float(np.median(cpu[measured])),
        "median_gather_seconds": float(np.median(gather[measured])),
        "median_optimize_seconds": float(np.median(optimize[measured])),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def zoo_speed(env_id: str, seed: int, settings: dict, frames: int) -> dict:
    """Seconds per frame of SB3's PPO on ``settings`` (from ``benchmarks.zoo.sb3_settings``) over ``frames``.

    ``settings`` holds PPO's keyword arguments (``learning_rate``/``clip_range`` as numbers, or
    ``{"linear": x}`` for a schedule going linearly from x to 0 over this run) plus
    ``norm_obs``/``norm_reward`` for VecNormalize. The clock covers only ``learn()``; the mean
    of the last 20 training episodes is reported as a sanity check of the settings, not a score.
    """
    PPO, BaseCallback, make_vec_env, VecNormalize = _imports()
    settings = dict(settings)
    n_envs = settings.pop("n_envs")
    norm_obs, norm_reward = settings.pop("norm_obs"), settings.pop("norm_reward")
    for key in ("learning_rate", "clip_range"):
        if isinstance(settings.get(key), dict):
            settings[key] = LinearDecay(settings[key]["linear"])
    returns = []

    class Episodes(BaseCallback):
        def _on_step(self) -> bool:
            returns.extend(info["episode"]["r"] for info in self.locals["infos"] if "episode" in info)
            return True

    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if norm_obs or norm_reward:
        env = VecNormalize(env, norm_obs=norm_obs, norm_reward=norm_reward, gamma=settings["gamma"])
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings)
    cpu_start, start = time.process_time(), time.perf_counter()
    model.learn(total_timesteps=frames, callback=Episodes())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"env_id": env_id, "seed": seed, "frames": int(model.num_timesteps), "seconds": seconds,
            "cpu_seconds": cpu_seconds, "seconds_per_frame": seconds / model.num_timesteps,
            "last20_training_mean": float(np.mean(returns[-20:])) if returns else None,
            "training_episodes": len(returns), "peak_rss_bytes": peak_rss_bytes()}
