"""``mpirun -n 2`` end to end: equal weights, exact merged statistics, learning as well as one
process, stopping together, and failing cleanly. Each test launches mpirun in a subprocess (the
mpirun next to this Python); the subprocess timeout guards against hangs."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
MPIRUN = Path(sys.executable).parent / "mpirun"

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py is not installed: pip install dexterity_nb[mpi] (mpi4py and the MPICH wheel)"),
    pytest.mark.skipif(not MPIRUN.exists(), reason=f"no mpirun next to {sys.executable} (the mpich wheel provides one)"),
]


def _environment():
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PMI_", "OMPI_", "MV2_", "MPI_LOCAL"))}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    environment["MPLBACKEND"] = "Agg"
    return environment


def _run(command, processes, timeout, cwd=HERE):
    prefix = [str(MPIRUN), "-n", str(processes)] if processes > 1 else []
    start = time.perf_counter()
    completed = subprocess.run(prefix + [sys.executable, *command], cwd=cwd, env=_environment(),
                               capture_output=True, text=True, timeout=timeout)
    return completed, time.perf_counter() - start


def _drill(directory, processes):
    directory.mkdir()
    completed, _ = _run([str(HERE / "drill_and_record.py"), str(directory), "0"], processes, timeout=120)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ranks = []
    for rank in range(processes):
        with np.load(directory / f"rank{rank}.npz") as arrays:
            ranks.append({"arrays": dict(arrays), **json.loads((directory / f"rank{rank}.json").read_text())})
    return ranks


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    return _drill(tmp_path_factory.mktemp("mpi") / "two", 2)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return _drill(tmp_path_factory.mktemp("mpi") / "one", 1)


def test_weights_and_history_are_identical_on_both_ranks(two_processes):
    first, second = two_processes
    assert first["processes"] == 2
    weights = sorted(name for name in first["arrays"] if name.startswith("weight"))
    assert weights
    for name in weights:
        np.testing.assert_array_equal(first["arrays"][name], second["arrays"][name], err_msg=name)
    assert first["history"] == second["history"]


def test_merged_statistics_equal_numpy_over_all_ranks_data(two_processes):
    everything = np.concatenate([rank["arrays"]["seen"] for rank in two_processes])
    assert all(len(rank["arrays"]["seen"]) < len(everything) for rank in two_processes)  # each saw a part
    for rank in two_processes:
        assert int(rank["arrays"]["count"]) == len(everything)
        np.testing.assert_allclose(rank["arrays"]["mean"], everything.mean(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rank["arrays"]["var"], everything.var(axis=0), rtol=1e-9)


def test_history_counts_every_rank_frames_and_episodes(two_processes):
    history = two_processes[0]["history"]
    assert [entry["frames"] for entry in history[:3]] == [256, 512, 768]  # 32 steps × 8 workers per cycle
    assert history[-1]["total_episodes"] == sum(entry["episodes"] for entry in history)


def test_two_processes_learn_cartpole_like_one_with_the_same_workers(two_processes, one_process):
    """Same target, same budget (150 cycles of 8 workers × 32 steps), seed 0: not the same numbers."""
    for run in (one_process[0], two_processes[0]):
        assert run["evaluation"] >= 475, f"{run['processes']} process(es): {run['evaluation']} after {run['cycles']} cycles"
    print(f"\ncycles to a deterministic mean >= 475: 1 process {one_process[0]['cycles']}, 2 processes {two_processes[0]['cycles']}")


def test_rank_0_stop_or_interrupt_stops_both_ranks_after_the_same_cycle(two_processes):
    first, second = two_processes
    assert first["stops"] == second["stops"]
    learned_at = first["cycles"]
    assert first["stops"] == [{"cycle": learned_at + 2, "outcome": "stopped"}, {"cycle": learned_at + 4, "outcome": "stopped"}]


def _assert_fails_once(completed, seconds, message):
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output[-3000:]
    output = f"return code {completed.returncode} after {seconds:.1f}s\n{output}"
    assert output.count(message) == 1, output[-4000:]
    assert seconds < 60, f"took {seconds:.0f}s to fail"


def test_an_error_on_one_rank_of_a_plain_script_ends_both(tmp_path):
    completed, seconds = _run(["failing_gatherer.py"], 2, timeout=90)
    _assert_fails_once(completed, seconds, "induced failure in worker 7")
    assert "Error on MPI process 1 of 2" in completed.stderr


def test_an_error_on_one_rank_under_the_cli_ends_both(tmp_path):
    completed, seconds = _run(["-m", "dexterity_nb", "drill", "CartPole-v1", "--cycles", "10", "--gatherer",
                               "failing_gatherer:FailingGatherer", "--out", str(tmp_path / "run")], 2, timeout=90)
    _assert_fails_once(completed, seconds, "induced failure in worker 7")
    assert not (tmp_path / "run" / "agent.npz").exists()  # progress.csv keeps the finished cycles' rows; no agent saved


def test_cli_argument_error_under_mpirun_is_shown_once(tmp_path):
    completed, seconds = _run(["-m", "dexterity_nb", "drill", "CartPole-v1", "--cycles", "2", "--batch-size", "255",
                               "--out", str(tmp_path / "run")], 2, timeout=90)
    _assert_fails_once(completed, seconds, "must be divisible by the number of MPI processes (2)")
    assert "dexterity-nb: error: `batch_size` (255)" in completed.stderr


def test_cli_drill_under_mpirun_saves_once_from_rank_0(tmp_path):
    completed, _ = _run(["-m", "dexterity_nb", "drill", "CartPole-v1", "--cycles", "3", "--seed", "0",
                         "--out", str(tmp_path / "run")], 2, timeout=90, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert completed.stdout.count("Drill started using 2 processes for 8 workers.") == 1
    assert completed.stdout.count("Cycle     3/3") == 1
    assert completed.stdout.count("Saved the agent to") == 1
    assert (tmp_path / "run" / "agent.npz").exists()


def test_a_recurrent_agent_trains_under_mpirun_with_equal_weights_on_both_ranks(tmp_path):
    completed, _ = _run([str(HERE / "recurrent_drill.py"), str(tmp_path)], 2, timeout=180)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0]["processes"] == 2 and ranks[0]["history"] == ranks[1]["history"]
    assert [entry["frames"] for entry in ranks[0]["history"]] == [128, 256, 384]  # 32 steps × 4 workers per cycle
    assert ranks[0]["history"][-1]["updates"] == 3 * 2 * 2  # 2 minibatches of 8 chunks (4 per rank) per epoch
    with np.load(tmp_path / "rank0.npz") as first, np.load(tmp_path / "rank1.npz") as second:
        assert first.files
        for name in first.files:
            np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.parametrize("intrinsic, workers, batch_size", [("rnd", 4, 64), ("counts", 4, 64), ("rnd", 3, 16)])
def test_curiosity_trains_under_mpirun_with_equal_state_on_both_ranks(tmp_path, intrinsic, workers, batch_size):
    """Equal weights, equal bonus state (RND target and predictor, V_i, count table, statistics), equal
    histories; the counts and statistics hold both ranks' steps. With 3 workers rank 0 holds twice
    rank 1's states, so RND and V_i must agree on how many minibatches to average."""
    completed, _ = _run([str(HERE / "curiosity_drill.py"), str(tmp_path), intrinsic, str(workers), str(batch_size)], 2,
                        timeout=180)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0]["processes"] == 2
    assert json.dumps(ranks[0]["history"]) == json.dumps(ranks[1]["history"])  # as text: NaN ≠ NaN as floats
    history, frames = ranks[0]["history"], 32 * workers
    assert [entry["frames"] for entry in history] == [frames, 2 * frames, 3 * frames]
    # Episodes of 20 steps end at step 20 (cycle 1), 40 and 60 (cycle 2), 80 (cycle 3), for every worker.
    assert [entry["episodes"] for entry in history] == [workers, 2 * workers, workers]
    assert all(entry["intrinsic_return"] > 0 for entry in history)
    with np.load(tmp_path / "rank0.npz") as first, np.load(tmp_path / "rank1.npz") as second:
        names = set(first.files)
        assert names == set(second.files)
        for name in names:
            np.testing.assert_array_equal(first[name], second[name], err_msg=name)
        if intrinsic == "counts":
            assert int(first["intrinsic/reward/counts"].sum()) == 3 * frames  # every rank's visits, added on every rank
        else:
            assert {"intrinsic/reward/predictor/0", "intrinsic/reward/target/0", "intrinsic/value/critic/0"} <= names
            assert float(first["intrinsic/reward/statistics/observation/count"]) == 3 * frames
            assert float(first["intrinsic/reward/statistics/return/count"]) == 3 * frames
