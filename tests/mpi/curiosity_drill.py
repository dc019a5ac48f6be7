"""Run by ``test_mpi_runs.py`` under ``mpirun -n K``: a few cycles of a curious agent on MountainCar
(episodes cut at 20 steps, so that some end); writes ``OUT_DIR/rank<r>.npz`` (the agent's weights
as ``weight<i>``, curiosity's learned state as ``intrinsic/<name>``) and ``OUT_DIR/rank<r>.json``
(history).

Usage: ``python curiosity_drill.py OUT_DIR INTRINSIC WORKERS BATCH_SIZE`` with INTRINSIC "rnd" or
"counts"; an odd WORKERS gives the ranks unequally many states, so that they train on unequally
many minibatches unless they agree on the fewest.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dexterity_nb import PPOAgent, get_model_builder, make_env  # noqa: E402


def main(out, intrinsic, workers, batch_size):
    import numpy as np

    agent = PPOAgent(get_model_builder("simple", "ffn", hidden_units=(16,)),
                     make_env("MountainCar-v0", max_episode_steps=20), horizon=32, workers=workers, seed=0,
                     verbose=False, intrinsic=intrinsic)
    agent.drill(3, epochs=2, batch_size=batch_size, verbose=False)
    rank, out = agent.communicator.rank, Path(out)
    arrays = {f"weight{index}": variable.numpy() for index, variable in enumerate(agent._variables)}
    arrays.update({f"intrinsic/{name}": value for name, value in agent._intrinsic_state().items()})
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps({"processes": agent.communicator.size, "history": agent.history}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
