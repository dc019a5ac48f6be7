"""MPI scale-out: the same drill on K processes, on one machine or many.

Under ``mpirun -n K`` every process (a *rank*) builds the same agent. The agent's ``workers`` are
split over the ranks; each rank gathers for its own workers, then the ranks talk at four points:

* **after gathering**, the transformers' running statistics are merged exactly
  (:meth:`Communicator.merge_statistics`): each rank contributes the moments of only the data it
  saw since the last merge (:func:`moments_since`), and every rank folds them in, in rank order,
  with :func:`~dexterity_nb.common.transformers.merge_moments`;
* **per minibatch**, each rank computes the gradient on its share (``batch_size / K`` samples) and
  the gradients are averaged with one ``Allreduce`` on one contiguous float32 buffer
  (:meth:`Communicator.average`); every rank then applies the same update, so weights stay equal;
* **at the end of a cycle**, the episode statistics are gathered from all ranks
  (:meth:`Communicator.combine_cycle`) so that every rank's history is the same, and rank 0's
  stop flag is broadcast (:meth:`Communicator.stop_requested`) so all ranks stop at the same cycle.

Without MPI the agent uses :class:`SingleProcess`, a stand-in with the same interface whose
methods do nothing, so the one-process path is unchanged. MPI is used only when the process was
started by ``mpirun``/``mpiexec`` with more than one process (:func:`launched_by_mpirun`), or when
a communicator is passed explicitly (``PPOAgent(..., communicator=Communicator())``). Importing
this module does not import mpi4py.

Failure: one rank's exception would leave the others waiting forever in a collective call. Under
``mpirun`` the :class:`Communicator` installs an excepthook that prints the error (once) and calls
``COMM_WORLD.Abort``, which ends every rank; :func:`run_or_abort` does the same around one call
(the CLI uses it). A caught exception on one rank still hangs the others: under MPI, let errors
propagate.

Install with ``pip install dexterity_nb[mpi]`` (mpi4py and the MPICH wheel; no system MPI needed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback

import numpy as np

from dexterity_nb.common.transformers import merge_moments

__all__ = [
    "SingleProcess",
    "Communicator",
    "resolve_communicator",
    "launched_by_mpirun",
    "split_workers",
    "local_batch_size",
    "moments_since",
    "merge_new_moments",
    "minibatch_shares",
    "share_means",
    "share_squared_deviations",
    "run_or_abort",
    "install_excepthook",
]

# The process-count variables set by the common launchers: MPICH/Hydra and Intel MPI (PMI_SIZE),
# Open MPI (OMPI_COMM_WORLD_SIZE), MVAPICH (MV2_COMM_WORLD_SIZE), Slurm's srun with PMI (PMI_SIZE).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_NOT_ROOT_REPORT_DELAY = 1.0  # seconds a non-root rank waits before reporting (see _report_and_abort)


def launched_by_mpirun() -> bool:
    """True if an MPI launcher started this process as one of more than one."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            "MPI needs mpi4py: install it with `pip install dexterity_nb[mpi]` (mpi4py and the MPICH wheel), "
            f"then run e.g. `mpirun -n 2 python -m dexterity_nb drill CartPole-v1`. ({error})"
        ) from error
    return MPI


# ---------------------------------------------------------------------- pure functions
def split_workers(workers: int, size: int, rank: int) -> tuple[int, int]:
    """``(first_worker_id, count)`` of ``rank``'s share when ``workers`` are split over ``size`` ranks.

    Shares differ by at most one; the first ``workers % size`` ranks get the extra worker. Global
    worker ids run 0..workers-1 across ranks, so every worker keeps its own seed wherever it runs.
    """
    if workers < size:
        raise ValueError(
            f"`workers` ({workers}) must be at least the number of MPI processes ({size}): every process "
            f"gathers for at least one worker. Use workers >= {size} or start fewer processes."
        )
    base, extra = divmod(workers, size)
    count = base + (1 if rank < extra else 0)
    first = rank * base + min(rank, extra)
    return first, count


def local_batch_size(batch_size: int, size: int) -> int:
    """Each rank's share of a minibatch: ``batch_size / size``, which must be a whole number."""
    if batch_size % size:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be divisible by the number of MPI processes ({size}): each "
            f"process computes the gradient on batch_size / {size} samples of every minibatch. "
            f"Use e.g. batch_size={max(size, batch_size - batch_size % size)}."
        )
    return batch_size // size


def moments_since(base_count, base_mean, base_var, count, mean, var):
    """The moments of the data added to statistics since they were ``(base_count, base_mean, base_var)``.

    Inverts :func:`~dexterity_nb.common.transformers.merge_moments`: if ``(n, μ, σ²)`` came from
    merging the base ``(n_a, μ_a, σ²_a)`` with new data ``(n_b, μ_b, σ²_b)``, then::

        n_b  = n − n_a
        μ_b  = (n μ − n_a μ_a) / n_b
        σ²_b = (n σ² − n_a σ²_a − δ² · n_a n_b / n) / n_b,   δ = μ_b − μ_a

    (σ² is the population variance.) Returns ``(n_b, μ_b, σ²_b)`` as float64; with no new data
    ``(0, zeros, zeros)``, which ``merge_moments`` ignores. Tiny negative variances from rounding
    are clipped to 0.
    """
    base_mean = np.asarray(base_mean, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    new_count = count - base_count
    if new_count < 0:
        raise ValueError(f"The statistics hold {count} samples, fewer than their base ({base_count}); they were reset.")
    if new_count == 0:
        return 0, np.zeros_like(mean), np.zeros_like(mean)
    if base_count == 0:
        return new_count, mean.copy(), np.asarray(var, dtype=np.float64).copy()
    new_mean = (count * mean - base_count * base_mean) / new_count
    delta = new_mean - base_mean
    new_var = (count * np.asarray(var, dtype=np.float64) - base_count * np.asarray(base_var, dtype=np.float64)
               - np.square(delta) * (base_count * new_count / count)) / new_count
    return new_count, new_mean, np.maximum(new_var, 0.0)


def merge_new_moments(base, new_moments):
    """Fold the ranks' new moments into the common base: ``(count, mean, var)`` over all the data.

    ``base`` is ``(n, μ, σ²)`` (the same on every rank); ``new_moments`` lists, in rank order, each
    rank's ``(n_b, μ_b, σ²_b)`` from :func:`moments_since`. Folding in rank order, with
    :func:`~dexterity_nb.common.transformers.merge_moments`, gives every rank the same numbers.
    """
    count, mean, var = base[0], np.asarray(base[1], dtype=np.float64), np.asarray(base[2], dtype=np.float64)
    for new_count, new_mean, new_var in new_moments:
        new_count = float(new_count)
        new_count = int(new_count) if new_count.is_integer() else new_count
        count, mean, var = merge_moments(count, mean, var, new_count, new_mean, new_var)
    return count, np.array(mean, dtype=np.float64), np.array(var, dtype=np.float64)


def minibatch_shares(values, permutations, share: int, batches_per_epoch: int) -> np.ndarray:
    """This rank's samples of every minibatch of a cycle: shape ``(epochs, batches_per_epoch, share)``.

    Minibatch b of epoch e takes ``permutations[e, b·share:(b+1)·share]`` of this rank's samples,
    as the update does, so the moments below describe exactly the samples each gradient sees.
    """
    indices = np.asarray(permutations)[:, : batches_per_epoch * share].reshape(len(permutations), batches_per_epoch, share)
    return np.asarray(values, dtype=np.float64)[indices]


def share_means(shares) -> np.ndarray:
    """μ_k, each minibatch's mean over this rank's share. With K equal shares, μ = mean_k μ_k."""
    return np.asarray(shares).mean(axis=-1)


def share_squared_deviations(shares, means) -> np.ndarray:
    """mean_j (A_kj − μ)² over this rank's share, around the minibatch mean μ over all ranks.

    With K equal shares the minibatch's population variance is σ² = mean_k of these. Taking the
    deviations from the common μ (a second exchange, once per cycle) instead of E[A²] − μ² keeps
    float32 from cancelling when |μ| ≫ σ.
    """
    return np.square(np.asarray(shares) - np.asarray(means)[..., None]).mean(axis=-1)


def _combine_cycles(per_rank: list) -> dict:
    """Combine the per-rank cycle summaries (in rank order) into the one every rank records."""
    return {
        "episode_returns": [value for summary in per_rank for value in summary["episode_returns"]],
        "episode_lengths": [value for summary in per_rank for value in summary["episode_lengths"]],
        "frames": sum(summary["frames"] for summary in per_rank),
        # The ranks wait for each other, so the slowest rank's time is the cycle's time.
        **{name: max(summary[name] for summary in per_rank) for name in ("gather_seconds", "optimize_seconds", "seconds")},
        # π_old/μ of every sample: its sum over all ranks (for the mean) and its largest value.
        "behaviour_weight_sum": sum(summary["behaviour_weight_sum"] for summary in per_rank),
        "behaviour_weight_max": max(summary["behaviour_weight_max"] for summary in per_rank),
        # Σ r^i of every rank's finished episodes (curiosity), in rank order.
        "intrinsic_returns": [value for summary in per_rank for value in summary.get("intrinsic_returns", [])],
    }


def _statistics_of(transformers) -> list:
    return [statistics for transformer in transformers for _, statistics in sorted(transformer.running_statistics().items())]


# ---------------------------------------------------------------------- communicators
class SingleProcess:
    """One process, no MPI: the stand-in the agent uses unless MPI is asked for. Every method is a no-op."""

    rank = 0
    size = 1
    is_root = True

    def average(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def broadcast_arrays(self, arrays: list) -> list:
        return arrays

    def statistics_state(self, transformers):
        return None

    def merge_statistics(self, transformers, base) -> None:
        pass

    def combine_cycle(self, summary: dict) -> dict:
        return summary

    def stop_requested(self, flag: bool) -> bool:
        return bool(flag)

    def interrupts_stop(self, stop):
        return contextlib.nullcontext()

    def __repr__(self):
        return "<SingleProcess: 1 process, no MPI>"


class Communicator(SingleProcess):
    """The ranks of an MPI communicator (default ``COMM_WORLD``), with what the drill needs from them.

    Args:
        comm: an ``mpi4py.MPI.Comm``; default ``MPI.COMM_WORLD`` (imports mpi4py).
        abort_on_error: install :func:`install_excepthook` when there is more than one rank, so an
            uncaught exception on any rank ends all of them instead of hanging.
    """

    def __init__(self, comm=None, abort_on_error: bool = True):
        MPI = _import_mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_root = self.rank == 0
        self.seconds_communicating = 0.0  # wall time spent in average() since creation
        if abort_on_error and self.size > 1:
            install_excepthook()

    def average(self, buffer: np.ndarray) -> np.ndarray:
        """Replace ``buffer`` (one contiguous float32 array) in place by its mean over all ranks."""
        if buffer.dtype != np.float32 or not buffer.flags.c_contiguous:
            raise TypeError(f"average() needs one contiguous float32 buffer; got {buffer.dtype}, contiguous={buffer.flags.c_contiguous}.")
        start = time.perf_counter()
        self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        buffer /= self.size
        self.seconds_communicating += time.perf_counter() - start
        return buffer

    def broadcast_arrays(self, arrays: list) -> list:
        """Rank 0's values of ``arrays`` on every rank (one contiguous float64 broadcast)."""
        arrays = [np.asarray(array) for array in arrays]
        flat = np.concatenate([array.astype(np.float64).ravel() for array in arrays]) if arrays else np.zeros(0)
        flat = np.ascontiguousarray(flat)
        self.comm.Bcast(flat, root=0)
        result, offset = [], 0
        for array in arrays:
            result.append(flat[offset:offset + array.size].reshape(array.shape).astype(array.dtype))
            offset += array.size
        return result

    def statistics_state(self, transformers):
        """The transformers' statistics now, as the base of the next :meth:`merge_statistics`."""
        return [(statistics.count, statistics.mean.copy(), statistics.var.copy()) for statistics in _statistics_of(transformers)]

    def merge_statistics(self, transformers, base) -> None:
        """Merge what every rank added to its statistics since ``base``; all ranks end up equal.

        ``base`` (from :meth:`statistics_state`) must be the same on all ranks, as it is at the start
        of a cycle. One ``Allgather`` of a float64 buffer [n_b, μ_b, σ²_b for each statistic].
        """
        statistics = _statistics_of(transformers)
        if not statistics:
            return
        parts = []
        for item, (base_count, base_mean, base_var) in zip(statistics, base):
            new_count, new_mean, new_var = moments_since(base_count, base_mean, base_var, item.count, item.mean, item.var)
            parts += [np.array([new_count], dtype=np.float64), new_mean.ravel(), new_var.ravel()]
        local = np.ascontiguousarray(np.concatenate(parts))
        everyone = np.empty((self.size, local.size), dtype=np.float64)
        self.comm.Allgather(local, everyone)
        offset = 0
        for item, item_base in zip(statistics, base):
            width = int(np.prod(item.shape, dtype=np.int64))
            rows = [  # one (n_b, μ_b, σ²_b) per rank, in rank order
                (row[offset], row[offset + 1:offset + 1 + width].reshape(item.shape),
                 row[offset + 1 + width:offset + 1 + 2 * width].reshape(item.shape))
                for row in everyone
            ]
            item.count, item.mean, item.var = merge_new_moments(item_base, rows)
            offset += 1 + 2 * width

    def combine_cycle(self, summary: dict) -> dict:
        """Episode returns and lengths of all ranks (rank order), total frames, the slowest rank's times.

        ``summary`` has ``episode_returns``, ``episode_lengths`` (lists), ``frames``,
        ``gather_seconds``, ``optimize_seconds`` and ``seconds``; a few hundred numbers per cycle,
        so a pickled ``allgather`` is fine.
        """
        return _combine_cycles(self.comm.allgather(summary))

    def stop_requested(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank, so all ranks stop after the same cycle."""
        return bool(self.comm.bcast(bool(flag), root=0))

    def interrupts_stop(self, stop):
        """While active (in the main thread), Ctrl-C / SIGINT calls ``stop()`` instead of raising.

        A KeyboardInterrupt in one rank in the middle of a cycle would leave the others waiting;
        instead, the cycle finishes and rank 0's stop flag ends the drill on all ranks together.
        A second Ctrl-C interrupts as usual.
        """
        if threading.current_thread() is not threading.main_thread():
            return contextlib.nullcontext()
        return _SigintAsStop(stop, self.is_root)

    def __repr__(self):
        return f"<Communicator: rank {self.rank} of {self.size}>"


class _SigintAsStop:
    def __init__(self, stop, announce):
        self.stop, self.announce, self.previous = stop, announce, None

    def _handle(self, signum, frame):
        signal.signal(signal.SIGINT, self.previous)
        if self.announce:
            print("Interrupt received: all processes stop after this cycle (Ctrl-C again to abort).", flush=True)
        self.stop()

    def __enter__(self):
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)
        return False


_world = None


def resolve_communicator(communicator=None):
    """The communicator an agent uses: the one given, else ``COMM_WORLD`` under ``mpirun -n K>1``, else :class:`SingleProcess`.

    ``communicator`` may be a :class:`SingleProcess`/:class:`Communicator` or an ``mpi4py`` Comm.
    """
    global _world
    if communicator is not None:
        if isinstance(communicator, SingleProcess):
            return communicator
        if hasattr(communicator, "Allreduce") and hasattr(communicator, "Get_rank"):
            return Communicator(communicator)
        raise TypeError(
            f"`communicator` must be a dexterity_nb.common.mpi.Communicator, SingleProcess or an mpi4py Comm; got {communicator!r}."
        )
    if not launched_by_mpirun():
        return SingleProcess()
    if _world is None:
        _world = Communicator()
    return _world


# ---------------------------------------------------------------------- failing cleanly
def _report_and_abort(error: BaseException, exit_code: int, message: str | None = None):
    """Print ``error`` once for all ranks and end every rank with ``COMM_WORLD.Abort``.

    When every rank meets the same error (a wrong argument), rank 0 reports it and its Abort ends
    the others while they wait a moment before reporting; an error on one rank only is reported by
    that rank, after that moment.
    """
    MPI = _import_mpi()
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
    if rank != 0:
        time.sleep(_NOT_ROOT_REPORT_DELAY)
    if message is None:
        message = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = f"Error on MPI process {rank} of {size}; ending all processes.\n{message}"
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    time.sleep(0.2)  # let the launcher forward the message before Abort kills the processes
    MPI.COMM_WORLD.Abort(exit_code)


def install_excepthook():
    """Make an uncaught exception on this rank print once and abort every rank (instead of a hang).

    Installed by :class:`Communicator` when there is more than one rank; call it yourself in a
    script that uses mpi4py before building an agent.
    """
    if getattr(sys.excepthook, "_dexterity_nb_abort", False):
        return
    previous = sys.excepthook

    def excepthook(kind, error, trace):
        if issubclass(kind, KeyboardInterrupt):
            _report_and_abort(error, 130, "Interrupted; ending all processes.")
        elif issubclass(kind, SystemExit):
            previous(kind, error, trace)
        else:
            _report_and_abort(error, 1)

    excepthook._dexterity_nb_abort = True
    sys.excepthook = excepthook


def run_or_abort(function, *args, brief_errors: tuple = (), program: str | None = None, **kwargs):
    """``function(*args, **kwargs)``; under ``mpirun`` an exception ends all ranks, shown once.

    Without MPI it is a plain call (exceptions propagate). Under ``mpirun -n K>1`` an exception
    prints its traceback (for ``brief_errors``: ``"<program>: error: <message>"``) and calls
    ``COMM_WORLD.Abort`` with exit code 1 (2 for brief errors, 130 for Ctrl-C). ``SystemExit``
    passes through. Typical use, in a script run under mpirun::

        from dexterity_nb.common.mpi import run_or_abort
        run_or_abort(main)
    """
    if not launched_by_mpirun():
        return function(*args, **kwargs)
    try:
        return function(*args, **kwargs)
    except SystemExit:
        raise
    except KeyboardInterrupt as error:
        _report_and_abort(error, 130, "Interrupted; ending all processes.")
    except brief_errors as error:
        _report_and_abort(error, 2, f"{program or 'error'}: error: {error}")
    except BaseException as error:
        _report_and_abort(error, 1)
