"""Recurrent-policy measurements, one per subprocess: ``python -m benchmarks.recurrent_side TASK KWARGS_JSON``.

The orchestrator is :mod:`benchmarks.recurrent`; it sets the thread-limit environment variables
(:mod:`benchmarks.limits`) before this process starts. TASK is ``cycles`` or ``solve``, KWARGS_JSON
its keyword arguments; the result is printed as one line starting with ``RESULT_MARKER``, as
``benchmarks.worker`` does, so the orchestrator finds it among library chatter.

Every agent learns velocity-free CartPole (``make_env("CartPole-v1", mask_velocity=True)``, without
transformers unless a variant names them) with the "simple" builder of the model type asked for
("ffn", "gru", "lstm").
"""

import json
import sys
import time

from .common import SOLVE_THRESHOLD, SOLVE_WINDOW, SolveTracker, peak_rss_bytes
from .limits import current_threads, limit_tensorflow
from .our_side import _cycle_figures, cpu_clock
from .worker import RESULT_MARKER

ENV_NAME = "CartPole-v1"
# Issue 12's settings: horizon 128, 8 workers, lr 1e-3, no entropy bonus; drill(., 10, 256).
AGENT = dict(horizon=128, workers=8, learning_rate=1e-3, c_entropy=0.0)
DRILL = dict(epochs=10, batch_size=256)
SOLVE_BUDGET = 300_000


def build_agent(model_type: str, seed: int, agent_overrides: dict | None = None, transformers=()):
    """The benchmark's agent and the seconds its construction took (networks, compiled functions)."""
    limit_tensorflow(current_threads())
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    settings = dict(AGENT, **(agent_overrides or {}))
    if model_type == "ffn":
        settings.pop("chunk_length", None)  # a feed-forward agent has no sequences to cut
    start = time.perf_counter()
    env = make_env(ENV_NAME, transformers=list(transformers), mask_velocity=True)
    agent = PPOAgent(get_model_builder("simple", model_type), env, seed=seed, verbose=False, **settings)
    return agent, time.perf_counter() - start


def cycles(model_type: str, cycles: int = 10, seed: int = 0, agent_overrides: dict | None = None,
           epochs: int = DRILL["epochs"], batch_size: int = DRILL["batch_size"]) -> dict:
    """Drill `cycles` cycles in one call: per-cycle gather/optimise/total seconds and CPU seconds.

    The first cycle (where the update is traced and XLA-compiled) is reported in the lists but
    left out of the medians (see :func:`benchmarks.our_side._cycle_figures`).
    """
    agent, build_seconds = build_agent(model_type, seed, agent_overrides)
    clock = cpu_clock()
    agent.drill(cycles, epochs, batch_size, callbacks=[clock], verbose=False)
    figures = _cycle_figures(agent.history, agent.horizon * agent.workers, None, clock.cycle_cpu_seconds)
    figures.update(model_type=model_type, seed=seed, build_seconds=build_seconds,
                   first_cycle_seconds=figures["cycle_seconds"][0],
                   chunk_length=getattr(agent, "chunk_length", None))
    return figures


def solve(model_type: str, seed: int, budget_steps: int = SOLVE_BUDGET, agent_overrides: dict | None = None,
          epochs: int = DRILL["epochs"], batch_size: int = DRILL["batch_size"], one_drill: bool = False,
          threshold: float = SOLVE_THRESHOLD, window: int = SOLVE_WINDOW, transformers=()) -> dict:
    """Drill until the rolling mean of the last `window` training returns reaches `threshold`.

    By default one cycle per ``drill`` call (benchmark 1's rule). ``one_drill=True`` makes one
    ``drill`` call for the whole budget that a callback stops at the solve, so that
    ``lr_schedule="linear"`` decays over the budget rather than within every cycle.
    The clock covers the ``drill`` calls only (the first cycle compiles the update);
    ``wall_seconds_to_solve`` adds the agent's construction. ``best_rolling`` is the highest
    rolling mean over full windows: how close an unsolved run came.
    """
    from dexterity_nb.agent.callbacks import Callback

    agent, build_seconds = build_agent(model_type, seed, agent_overrides, transformers)
    tracker = SolveTracker(threshold, window)
    clock = {"seconds": 0.0, "cpu_seconds": 0.0}

    class FollowReturns(Callback):
        """Feeds each cycle's finished episodes to the tracker and stops the drill at the solve."""

        def on_drill_begin(self, agent):
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
            self.base, self.cpu_base = clock["seconds"], clock["cpu_seconds"]

        def on_cycle_end(self, agent, stats):
            clock["seconds"] = self.base + time.perf_counter() - self.start
            clock["cpu_seconds"] = self.cpu_base + time.process_time() - self.cpu_start
            for episode_return in stats["episode_returns"]:
                if tracker.add(episode_return, clock["seconds"], int(stats["frames"]), clock["cpu_seconds"]):
                    agent.stop_drill()
                    break

    follow = FollowReturns()
    frames_per_cycle = agent.horizon * agent.workers
    if one_drill:
        agent.drill(-(-budget_steps // frames_per_cycle), epochs, batch_size, callbacks=[follow], verbose=False)
    else:
        while not tracker.solved and len(agent.history) * frames_per_cycle < budget_steps:
            agent.drill(1, epochs, batch_size, callbacks=[follow], verbose=False)
    frames = int(agent.history[-1]["frames"])
    result = tracker.result(clock["seconds"], frames, clock["cpu_seconds"])
    full_windows = [rolling for *_, rolling in tracker.curve[window - 1:]]
    result.update(
        model_type=model_type, seed=seed, build_seconds=build_seconds,
        wall_seconds_to_solve=build_seconds + result["seconds_to_solve"] if result["solved"] else None,
        first_cycle_seconds=float(agent.history[0]["seconds"]),
        best_rolling=max(full_windows) if full_windows else None,
        cycles=len(agent.history), budget_steps=budget_steps, one_drill=one_drill, peak_rss_bytes=peak_rss_bytes(),
        settings={**AGENT, **(agent_overrides or {}), "epochs": epochs, "batch_size": batch_size,
                  "transformers": list(transformers),
                  "chunk_length": getattr(agent, "chunk_length", None), "lr_schedule": repr(agent.lr_schedule)},
    )
    return result


TASKS = {"cycles": cycles, "solve": solve}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TASKS:
        print(f"usage: python -m benchmarks.recurrent_side {{{'|'.join(TASKS)}}} KWARGS_JSON, got {argv}",
              file=sys.stderr)
        return 2
    result = TASKS[argv[0]](**json.loads(argv[1]))
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
