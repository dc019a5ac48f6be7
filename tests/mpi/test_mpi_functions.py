"""The pure pieces of MPI scale-out (no mpirun): worker split, batch share, the moments a rank
adds since the last merge, the merge itself against NumPy over all data, and the stand-in."""

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from dexterity_nb.agent.gather import worker_seeds
from dexterity_nb.common import mpi
from dexterity_nb.common.transformers import RunningMeanStd


@pytest.mark.parametrize("workers, size", [(8, 2), (7, 2), (6, 4), (5, 5), (12, 5)])
def test_split_workers_covers_every_worker_once_in_order(workers, size):
    shares = [mpi.split_workers(workers, size, rank) for rank in range(size)]
    ids = [first + index for first, count in shares for index in range(count)]
    assert ids == list(range(workers))
    counts = [count for _, count in shares]
    assert max(counts) - min(counts) <= 1 and min(counts) >= 1


def test_split_workers_needs_a_worker_per_process():
    with pytest.raises(ValueError, match=r"`workers` \(2\).*processes \(3\)"):
        mpi.split_workers(2, 3, 0)


def test_local_batch_size_names_both_numbers():
    assert mpi.local_batch_size(256, 2) == 128
    with pytest.raises(ValueError, match=r"`batch_size` \(255\).*processes \(2\)"):
        mpi.local_batch_size(255, 2)


@pytest.mark.parametrize("shape", [(), (3,)])
def test_moments_since_equals_numpy_over_the_new_data(shape):
    rng = np.random.default_rng(0)
    old = [rng.normal(5.0, 3.0, (n, *shape)) for n in (7, 40, 1)]
    new = [rng.normal(-2.0, 0.5, (n, *shape)) for n in (9, 30)]
    statistics = RunningMeanStd(shape)
    for batch in old:
        statistics.update(batch)
    base = (statistics.count, statistics.mean.copy(), statistics.var.copy())
    for batch in new:
        statistics.update(batch)
    count, mean, var = mpi.moments_since(*base, statistics.count, statistics.mean, statistics.var)
    everything_new = np.concatenate(new)
    assert count == len(everything_new)
    np.testing.assert_allclose(mean, everything_new.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(var, everything_new.var(axis=0), rtol=1e-9)


def test_moments_since_with_an_empty_base_or_no_new_data():
    statistics = RunningMeanStd((2,))
    empty = (statistics.count, statistics.mean.copy(), statistics.var.copy())
    data = np.arange(10.0).reshape(5, 2)
    statistics.update(data)
    count, mean, var = mpi.moments_since(*empty, statistics.count, statistics.mean, statistics.var)
    assert count == 5
    np.testing.assert_allclose(mean, data.mean(axis=0))
    np.testing.assert_allclose(var, data.var(axis=0))
    count, _, _ = mpi.moments_since(statistics.count, statistics.mean, statistics.var,
                                    statistics.count, statistics.mean, statistics.var)
    assert count == 0


@pytest.mark.parametrize("ranks", [2, 3])
def test_merge_of_every_rank_new_moments_equals_numpy_over_all_data(ranks):
    """What Communicator.merge_statistics does on each rank, simulated for several cycles."""
    rng = np.random.default_rng(1)
    shape = (4,)
    statistics = [RunningMeanStd(shape) for _ in range(ranks)]  # one per simulated rank
    everything = []
    for cycle in range(4):
        base = (statistics[0].count, statistics[0].mean.copy(), statistics[0].var.copy())
        for rank, item in enumerate(statistics):
            for _ in range(3):  # a rank folds in several batches per gathering
                batch = rng.normal(rank * 10.0 + cycle, 1.0 + rank, (int(rng.integers(1, 20)), *shape))
                item.update(batch)
                everything.append(batch)
        rows = [mpi.moments_since(*base, item.count, item.mean, item.var) for item in statistics]
        merged = mpi.merge_new_moments(base, rows)
        for item in statistics:
            item.count, item.mean, item.var = merged
    everything = np.concatenate(everything)
    assert statistics[0].count == len(everything)
    np.testing.assert_allclose(statistics[0].mean, everything.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(statistics[0].var, everything.var(axis=0), rtol=1e-9)


def test_worker_seeds_are_the_spawned_children_wherever_the_worker_runs():
    def first_draws(seeds):
        return [int(np.random.default_rng(seed).integers(2**62)) for seed in seeds]

    spawned = first_draws(np.random.SeedSequence(7).spawn(8))
    assert first_draws(worker_seeds(np.random.SeedSequence(7), 0, 8)) == spawned
    split = [worker_seeds(np.random.SeedSequence(7), *mpi.split_workers(8, 2, rank)) for rank in range(2)]
    assert first_draws(split[0]) + first_draws(split[1]) == spawned
    assert len(set(spawned)) == 8


def test_combine_cycles_concatenates_in_rank_order_and_takes_the_slowest_time():
    per_rank = [
        {"episode_returns": [1.0], "episode_lengths": [10], "frames": 128, "gather_seconds": 0.5, "optimize_seconds": 1.0, "seconds": 1.5,
         "behaviour_weight_sum": 128.0, "behaviour_weight_max": 1.0, "intrinsic_returns": [0.5]},
        {"episode_returns": [2.0, 3.0], "episode_lengths": [20, 30], "frames": 128, "gather_seconds": 0.7, "optimize_seconds": 0.9, "seconds": 1.6,
         "behaviour_weight_sum": 100.0, "behaviour_weight_max": 2.5, "intrinsic_returns": [0.25, 0.75]},
    ]
    combined = mpi._combine_cycles(per_rank)
    assert combined == {"episode_returns": [1.0, 2.0, 3.0], "episode_lengths": [10, 20, 30], "frames": 256,
                        "gather_seconds": 0.7, "optimize_seconds": 1.0, "seconds": 1.6,
                        "behaviour_weight_sum": 228.0, "behaviour_weight_max": 2.5,
                        "intrinsic_returns": [0.5, 0.25, 0.75]}


def test_single_process_has_the_communicator_interface_and_changes_nothing():
    public = {name for name in vars(mpi.Communicator) if not name.startswith("_")}
    assert public <= set(dir(mpi.SingleProcess))
    single = mpi.SingleProcess()
    buffer = np.arange(3, dtype=np.float32)
    assert single.average(buffer) is buffer and single.size == 1 and single.is_root
    summary = {"episode_returns": [1.0], "frames": 3}
    assert single.combine_cycle(summary) is summary
    assert single.stop_requested(True) is True
    assert isinstance(single.interrupts_stop(lambda: None), contextlib.nullcontext)


def test_launched_by_mpirun_needs_more_than_one_process(monkeypatch):
    for name in mpi._SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not mpi.launched_by_mpirun()
    assert isinstance(mpi.resolve_communicator(), mpi.SingleProcess)
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not mpi.launched_by_mpirun()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert mpi.launched_by_mpirun()


def test_resolve_communicator_rejects_other_objects():
    with pytest.raises(TypeError, match="communicator"):
        mpi.resolve_communicator("world")


def test_run_or_abort_is_a_plain_call_without_mpi(monkeypatch):
    for name in mpi._SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert mpi.run_or_abort(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        mpi.run_or_abort(lambda: 1 / 0)


def test_sigint_becomes_a_stop_request_while_active():
    stops = []
    previous = signal.getsignal(signal.SIGINT)
    with mpi._SigintAsStop(lambda: stops.append(True), announce=False):
        os.kill(os.getpid(), signal.SIGINT)
    assert stops == [True]
    assert signal.getsignal(signal.SIGINT) is previous


def test_importing_and_one_process_use_never_import_mpi4py():
    environment = {key: value for key, value in os.environ.items() if key not in mpi._SIZE_VARIABLES}
    code = (
        "import sys, dexterity_nb, dexterity_nb.common.mpi as mpi\n"
        "assert isinstance(mpi.resolve_communicator(), mpi.SingleProcess)\n"
        "print('mpi4py' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)
    assert output.stdout.strip() == "False", output.stderr


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py is not installed (pip install dexterity_nb[mpi])")
def test_communicator_over_one_process_is_the_identity():
    from mpi4py import MPI

    communicator = mpi.Communicator(MPI.COMM_SELF)
    buffer = np.array([1.0, -2.0, 3.5], dtype=np.float32)
    np.testing.assert_array_equal(communicator.average(buffer.copy()), buffer)
    with pytest.raises(TypeError, match="float32"):
        communicator.average(np.zeros(3))
    (weights,) = communicator.broadcast_arrays([np.arange(6, dtype=np.float32).reshape(2, 3)])
    np.testing.assert_array_equal(weights, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert weights.dtype == np.float32


def test_minibatch_moments_from_equal_shares_equal_numpy_over_the_whole_minibatch():
    # K ranks each hold `share` samples of every minibatch; normalising each share with its own
    # moments (as the MPI path once did) is not what one process computes over the whole minibatch.
    rng = np.random.default_rng(3)
    ranks, samples, share, epochs = 3, 40, 8, 2
    advantages = [rng.normal(50.0 * rank, 1.0 + rank, samples) for rank in range(ranks)]  # |μ| ≫ σ on purpose
    permutations = [np.stack([rng.permutation(samples) for _ in range(epochs)]) for _ in range(ranks)]
    shares = [mpi.minibatch_shares(a, p, share, samples // share) for a, p in zip(advantages, permutations)]
    means = np.mean([mpi.share_means(s) for s in shares], axis=0).astype(np.float32)  # what Allreduce-mean gives
    variances = np.mean([mpi.share_squared_deviations(s, means) for s in shares], axis=0)
    whole = np.concatenate(shares, axis=-1)  # (epochs, batches, ranks · share)
    np.testing.assert_allclose(means, whole.mean(axis=-1), rtol=1e-6)
    np.testing.assert_allclose(variances, whole.var(axis=-1), rtol=1e-5)

    from dexterity_nb.agent.objectives import normalize_advantages

    first = whole[0, 0]
    normalized_whole = normalize_advantages(first).numpy()
    normalized_share = normalize_advantages(shares[1][0, 0], moments=(means[0, 0], variances[0, 0])).numpy()
    np.testing.assert_allclose(normalized_share, normalized_whole[share:2 * share], rtol=1e-4, atol=1e-4)
    assert not np.allclose(normalize_advantages(shares[1][0, 0]).numpy(), normalized_share, atol=1e-2)
