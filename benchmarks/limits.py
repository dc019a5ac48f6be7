"""Thread limits shared by both frameworks, applied in each measuring subprocess.

The benchmark machine has 2 cores. Each framework runs in its own subprocess and
gets the same limits, so neither can use the second core for intra-op or inter-op
parallelism while the other cannot:

* environment variables (read by OpenMP/MKL/OpenBLAS/Eigen and by TensorFlow when
  its runtime starts): ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``
  all set to ``threads`` (default 1);
* after import: ``torch.set_num_threads(threads)`` and
  ``torch.set_num_interop_threads(threads)`` for PyTorch,
  ``tf.config.threading.set_intra_op_parallelism_threads(threads)`` and
  ``set_inter_op_parallelism_threads(threads)`` for TensorFlow.

One thread is what the RL Zoo numbers in the issue were measured with
(``torch.set_num_threads(1)``); for networks of 2x64 units more threads only add
synchronisation cost.
"""

import os

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def thread_environment(threads: int) -> dict:
    """Environment variables to give a measuring subprocess (before it imports anything)."""
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be a positive int, got {threads!r}")
    variables = {name: str(threads) for name in THREAD_VARIABLES}
    variables["TF_CPP_MIN_LOG_LEVEL"] = "3"  # silence TensorFlow's start-up banner
    variables["CUDA_VISIBLE_DEVICES"] = ""  # no GPU probing on a CPU box
    return variables


def limit_torch(threads: int) -> None:
    """Apply the thread limit to PyTorch (call right after importing it)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set, or parallel work already started
        pass


def limit_tensorflow(threads: int) -> None:
    """Apply the thread limit to TensorFlow (call before the first TF op runs)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # runtime already initialised: the env variables still hold
        pass


def current_threads() -> int:
    """The thread limit this subprocess was started with."""
    return int(os.environ.get("OMP_NUM_THREADS", "1"))
