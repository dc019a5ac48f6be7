"""Run by ``test_mpi_drill.py`` under ``mpirun -n K`` or alone: drill CartPole-v1 until a
deterministic evaluation reaches 475 (at most ``MAX_CYCLES``) and write what the tests check.

Usage: ``python drill_and_record.py OUT_DIR SEED``. Writes ``OUT_DIR/rank<r>.npz`` (weights,
the raw states this rank folded into its statistics, the statistics after the drill) and
``OUT_DIR/rank<r>.json`` (history, cycles needed, last evaluation). Then it stops two
short drills from rank 0 (``stop_drill`` and SIGINT) and records where each rank ended.
"""

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dexterity_nb import PPOAgent, get_model_builder, make_env  # noqa: E402
from dexterity_nb.agent.callbacks import Callback  # noqa: E402
from dexterity_nb.common.transformers import StateNormalizationTransformer  # noqa: E402

CHUNK, MAX_CYCLES, TARGET = 10, 150, 475.0


class RecordingStateNormalization(StateNormalizationTransformer):
    """Keeps a copy of every batch of states folded into the statistics."""

    def transform_state(self, states, update=True):
        if update:
            self.__dict__.setdefault("seen", []).append(np.array(states, dtype=np.float64))
        return super().transform_state(states, update)


class StopAfter(Callback):
    """Asks the drill to stop after cycle ``cycle``: with ``stop_drill`` or, like Ctrl-C, with SIGINT.

    With MPI callbacks run on rank 0 only, so this checks that rank 0's request stops every rank.
    """

    def __init__(self, cycle, interrupt=False):
        self.cycle, self.interrupt = cycle, interrupt

    def on_cycle_end(self, agent, stats):
        if stats["cycle"] == self.cycle:
            os.kill(os.getpid(), signal.SIGINT) if self.interrupt else agent.stop_drill()


def main(out, seed):
    env = make_env("CartPole-v1", transformers=[RecordingStateNormalization()])
    agent = PPOAgent(get_model_builder("simple", "ffn"), env, horizon=32, workers=8, learning_rate=1e-3,
                     discount=0.98, lam=0.8, clip=0.2, c_entropy=0.0, c_value=0.5, gradient_clipping=0.5,
                     seed=seed, verbose=False)
    rank = agent.communicator.rank
    evaluation = None
    while agent.cycle < MAX_CYCLES:
        agent.drill(CHUNK, 20, 256, verbose=False)
        evaluation = agent.evaluate(5)
        # Every rank must take rank 0's decision, or one would wait for the other forever.
        if agent.communicator.stop_requested(evaluation.mean_return >= TARGET):
            break
    cycles_to_target = agent.cycle
    stops = []
    for interrupt in (False, True):
        agent.drill(5, 2, 256, verbose=False, callbacks=[StopAfter(agent.cycle + 2, interrupt)])
        stops.append({"cycle": agent.cycle, "outcome": agent.drill_outcome})
    transformer = agent.transformers[0]
    out = Path(out)
    np.savez(out / f"rank{rank}.npz", seen=np.concatenate(transformer.seen),
             count=transformer.statistics.count, mean=transformer.statistics.mean, var=transformer.statistics.var,
             **{f"weight{index}": variable.numpy() for index, variable in enumerate(agent._variables)})
    (out / f"rank{rank}.json").write_text(json.dumps({
        "processes": agent.communicator.size, "history": agent.history, "cycles": cycles_to_target,
        "evaluation": float(evaluation.mean_return), "frames": agent.frames, "stops": stops,
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
