"""Run by ``test_mpi_runs.py`` under ``mpirun -n K``: a few cycles of a GRU agent on velocity-free
CartPole; writes ``OUT_DIR/rank<r>.npz`` (weights) and ``OUT_DIR/rank<r>.json`` (history).

Usage: ``python recurrent_drill.py OUT_DIR``.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dexterity_nb import PPOAgent, get_model_builder, make_env  # noqa: E402


def main(out):
    agent = PPOAgent(get_model_builder("simple", "gru", hidden_units=(16,), recurrent_units=16),
                     make_env("CartPole-v1", mask_velocity=True), horizon=32, workers=4, chunk_length=8, seed=0,
                     verbose=False)
    agent.drill(3, epochs=2, batch_size=64, verbose=False)
    rank, out = agent.communicator.rank, Path(out)
    import numpy as np

    np.savez(out / f"rank{rank}.npz", **{f"weight{index}": variable.numpy() for index, variable in enumerate(agent._variables)})
    (out / f"rank{rank}.json").write_text(json.dumps({"processes": agent.communicator.size, "history": agent.history}))


if __name__ == "__main__":
    main(sys.argv[1])
