"""dexterity_nb measurements. Imported only inside a measuring subprocess.

Each function returns a JSON-serialisable dict; `benchmarks.worker` runs one per process.
Timings come from the agent's own history (``seconds``, ``gather_seconds``,
``optimize_seconds``) or, for the solve runs, from the wall time of the `drill` calls.
"""

import time

import numpy as np

from .common import SOLVE_THRESHOLD, SOLVE_WINDOW, TUTORIAL, ZOO, SolveTracker, peak_rss_bytes
from .limits import current_threads, limit_tensorflow

PRESET_ENV = "CartPole-v1"
DRILL_KEYS = ("epochs", "batch_size")


def _imports():
    import tensorflow as tf

    limit_tensorflow(current_threads())
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.transformers import StateNormalizationTransformer
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    return tf, PPOAgent, StateNormalizationTransformer, make_env, get_model_builder


def load_preset(name: str = PRESET_ENV):
    """Our CLI's recommended settings for `name`, or None when the package has no presets yet.

    Returns ``(agent_kwargs, drill_kwargs)`` from ``dexterity_nb.presets.PRESETS[name]``
    (``{"transformers": [...], "agent": {...}, "drill": {...}, ...}``); the preset's
    transformers (and model, if it names one) travel in `agent_kwargs` for `_build_agent`.
    Other keys (such as ``target_return``) are the CLI's business: the benchmark's own
    solve criterion applies.
    """
    try:
        from dexterity_nb.presets import PRESETS
    except ImportError:
        return None
    if name not in PRESETS:
        return None
    preset = PRESETS[name]
    agent_kwargs = dict(preset.get("agent", {}))
    drill_kwargs = dict(preset.get("drill", {}))
    for key in ("transformers", "model", "model_builder"):
        if key in preset:
            agent_kwargs[key] = preset[key]
    return agent_kwargs, drill_kwargs


def _build_agent(agent_kwargs: dict, seed: int, width=None, gatherer=None):
    """A CartPole-v1 agent with state normalisation and the "simple" ffn (optionally `width` wide)."""
    _, PPOAgent, StateNormalizationTransformer, make_env, _ = _imports()
    agent_kwargs = dict(agent_kwargs)
    env_name = agent_kwargs.pop("env", PRESET_ENV)
    transformers = agent_kwargs.pop("transformers", [StateNormalizationTransformer])
    model = agent_kwargs.pop("model", ("simple", "ffn"))
    builder = agent_kwargs.pop("model_builder", None)
    if builder is None:
        builder = _model_builder(model, width)
    env = make_env(env_name, transformers=transformers)
    agent = PPOAgent(builder, env, seed=seed, **agent_kwargs)
    if gatherer == "epsilon":
        from .epsilon_greedy import EpsilonGreedyGatherer

        agent.assign_gatherer(EpsilonGreedyGatherer)
    return agent


def _model_builder(model, width=None):
    """The registered builder `model` (default "simple" ffn); `width` sets both hidden layers' units."""
    from dexterity_nb.models import get_model_builder

    if isinstance(model, str):
        model = (model, "ffn")
    if width is None:
        return get_model_builder(*model)
    return get_model_builder(*model, hidden_units=(int(width), int(width)))


def _solve_loop(agent, epochs, batch_size, budget_steps, threshold, window) -> dict:
    """Drill one cycle at a time until the rolling mean of training returns reaches `threshold`."""
    tracker = SolveTracker(threshold, window)
    learn_seconds = learn_cpu_seconds = 0.0
    first_call_seconds = None
    frames = 0
    while not tracker.solved and frames < budget_steps:
        cpu_start, start = time.process_time(), time.perf_counter()
        agent.drill(1, epochs, batch_size, verbose=False)
        learn_seconds += time.perf_counter() - start
        if first_call_seconds is None:  # waits for the rest of the update's tracing, begun at construction
            first_call_seconds = learn_seconds
        learn_cpu_seconds += time.process_time() - cpu_start
        stats = agent.history[-1]
        frames = int(stats["frames"])
        for episode_return in stats["episode_returns"]:
            if tracker.add(episode_return, learn_seconds, frames, learn_cpu_seconds):
                break
    result = tracker.result(learn_seconds, frames, learn_cpu_seconds)
    result["cycles"] = len(agent.history)
    result["first_call_seconds"] = first_call_seconds
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def solve(seed: int, budget_steps: int = ZOO["n_timesteps"], threshold: float = SOLVE_THRESHOLD,
          window: int = SOLVE_WINDOW) -> dict:
    """The issue's RL Zoo settings on our agent: horizon 32, 8 workers, repeated drill(1, 20, 256)."""
    agent = _build_agent(dict(horizon=ZOO["n_steps"], workers=ZOO["n_envs"], discount=ZOO["gamma"],
                              lam=ZOO["gae_lambda"], learning_rate=ZOO["learning_rate"],
                              c_entropy=ZOO["ent_coef"]), seed)
    return _solve_loop(agent, ZOO["n_epochs"], ZOO["batch_size"], budget_steps, threshold, window)


def solve_preset(seed: int, budget_steps: int = ZOO["n_timesteps"],
                 threshold: float = SOLVE_THRESHOLD, window: int = SOLVE_WINDOW) -> dict:
    """Our CLI's CartPole-v1 preset, one cycle per drill call, until solved."""
    preset = load_preset()
    if preset is None:
        return {"skipped": "dexterity_nb.presets.PRESETS['CartPole-v1'] does not exist"}
    agent_kwargs, drill_kwargs = preset
    agent = _build_agent(agent_kwargs, seed)
    result = _solve_loop(agent, drill_kwargs.get("epochs", 3), drill_kwargs.get("batch_size", 64),
                         budget_steps, threshold, window)
    result["preset"] = {"agent": {k: repr(v) for k, v in agent_kwargs.items()},
                        "drill": {k: v for k, v in drill_kwargs.items()}}
    return result


def raw_env_rate(workers: int = TUTORIAL["workers"], steps_per_worker: int = 20_000,
                 seed: int = 0) -> float:
    """Env steps per second of `workers` plain gymnasium CartPole-v1 envs, random actions, no policy.

    This is the ceiling for gathering: the env alone, stepped from one Python loop,
    with actions drawn up front so that drawing them costs nothing in the loop.
    """
    import gymnasium

    envs = [gymnasium.make("CartPole-v1") for _ in range(workers)]
    for index, env in enumerate(envs):
        env.reset(seed=seed + index)
    actions = np.random.default_rng(seed).integers(0, 2, size=(steps_per_worker, workers)).tolist()
    start = time.perf_counter()
    for step_actions in actions:
        for env, action in zip(envs, step_actions):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    return steps_per_worker * workers / (time.perf_counter() - start)


def cycles(cycles: int = 10, seed: int = 0, workers: int = TUTORIAL["workers"],
           horizon: int = TUTORIAL["horizon"], epochs: int = TUTORIAL["epochs"],
           batch_size: int = TUTORIAL["batch_size"], gatherer: str = "default",
           raw_steps_per_worker: int = 20_000) -> dict:
    """Drill the tutorial setup `cycles` times, one drill call: per-cycle times, gathering rate, peak RSS.

    The first cycle (which traces the compiled functions) is reported but left out of
    the medians. The raw env rate is measured in the same process before the agent exists.
    """
    raw = raw_env_rate(workers, raw_steps_per_worker, seed) if raw_steps_per_worker else None
    agent = _build_agent(dict(horizon=horizon, workers=workers), seed, gatherer=gatherer)
    clock = cpu_clock()
    agent.drill(cycles, epochs, batch_size, callbacks=[clock], verbose=False)
    return _cycle_figures(agent.history, workers * horizon, raw, clock.cycle_cpu_seconds)


def cpu_clock():
    """A drill callback noting the process's CPU seconds per cycle (robust to other load)."""
    from dexterity_nb.agent.callbacks import Callback

    class _CpuClock(Callback):
        def __init__(self):
            self.cycle_cpu_seconds = []
            self._last = None

        def on_drill_begin(self, agent):
            self._last = time.process_time()

        def on_cycle_end(self, agent, stats):
            now = time.process_time()
            self.cycle_cpu_seconds.append(now - self._last)
            self._last = now

    return _CpuClock()


def _cycle_figures(history, frames_per_cycle, raw_rate=None, cpu_seconds=None) -> dict:
    seconds = [float(h["seconds"]) for h in history]
    gather = [float(h["gather_seconds"]) for h in history]
    optimize = [float(h["optimize_seconds"]) for h in history]
    frames = [int(h["frames"]) for h in history]
    updates = [int(h["updates"]) for h in history]
    measured = slice(1, None) if len(history) > 1 else slice(None)
    gather_rates = [frames_per_cycle / g for g in gather[measured] if g > 0]
    return {
        "frames_per_cycle": frames_per_cycle,
        "updates_per_cycle": updates[0] if updates else None,
        "cycle_seconds": seconds,
        "cycle_cpu_seconds": cpu_seconds,
        "gather_seconds": gather,
        "optimize_seconds": optimize,
        "frames": frames,
        "mean_returns": [float(h["mean_return"]) for h in history],
        "median_cycle_seconds": float(np.median(seconds[measured])),
        "median_cycle_cpu_seconds": float(np.median(cpu_seconds[measured])) if cpu_seconds else None,
        "median_gather_seconds": float(np.median(gather[measured])),
        "median_optimize_seconds": float(np.median(optimize[measured])),
        "gather_steps_per_second": float(np.median(gather_rates)) if gather_rates else None,
        "raw_env_steps_per_second": raw_rate,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def scaling(configs: list, cycles: int = 3, seed: int = 0) -> dict:
    """Seconds per cycle for each config (dict of workers, horizon, epochs, batch_size, width).

    All configs run in this one process, each with a fresh agent; the first cycle of
    each (tracing) is left out of its medians.
    """
    rows = []
    for config in configs:
        config = dict(TUTORIAL, **config)
        width = config.get("width")
        agent = _build_agent(dict(horizon=config["horizon"], workers=config["workers"]), seed,
                             width=width)
        clock = cpu_clock()
        agent.drill(cycles, config["epochs"], config["batch_size"], callbacks=[clock], verbose=False)
        figures = _cycle_figures(agent.history, config["workers"] * config["horizon"], None,
                                 clock.cycle_cpu_seconds)
        figures.pop("peak_rss_bytes")
        rows.append(dict(config=config, **figures))
    return {"rows": rows, "peak_rss_bytes": peak_rss_bytes()}
