"""Cutting a cycle into training sequences: truncated back-propagation through time, as pure NumPy.

Used by the recurrent update, issue 12; nothing in the agent calls it yet.

A recurrent policy (a GRU or an LSTM) carries a hidden state h_t from step to step of an
episode. Training it through a worker's whole horizon would back-propagate through T steps;
instead each worker's horizon is cut into consecutive *chunks* of L steps. Gradients flow inside
a chunk only (truncated BPTT), and each chunk starts from the hidden state the policy really had
at that step while gathering, so the network sees what it saw when it acted. Inside a chunk, the
state is set to zero where a new episode begins: an episode never remembers the one before it.

Symbols: T the horizon, W the workers, L ``chunk_length``, K = ⌈T / L⌉ chunks per worker,
C = W·K chunks in all. Buffers are laid out as gathering lays them out (see ``gather.Trajectories``):
time first, then workers, ``(T, W, ...)``.

    chunks = cut_into_chunks(trajectories.episode_ends, chunk_length=16)
    observations = gather_chunks(trajectories.observations, chunks)   # (C, L, observation size)
    initial_states = chunk_start_states(hidden_states, chunks)         # (C, units)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Chunks", "cut_into_chunks", "gather_chunks", "chunk_start_states"]


@dataclass(frozen=True)
class Chunks:
    """Where each chunk's steps are in the ``(T, W, ...)`` buffers, and how to treat each step.

    Chunk c = w·K + k is worker w's k-th chunk (a worker's chunks are consecutive), and its step
    i is the buffers' step t = k·L + i of worker w. All arrays have shape ``(C, L)``.

    Attributes:
        time_indices: t for each step (int64); the worker's last step T − 1 at padding.
        worker_indices: w for each step (int64).
        reset: True where the step begins a new episode inside the chunk, i.e. the step before it
            ended one (``episode_ends[t − 1, w]``): the recurrent update sets the state carried
            into that step to zero, h ← (1 − reset)·h. Always False at a chunk's first step,
            whose state is the recorded one (:func:`chunk_start_states`), and at padding.
        valid: False at padding (steps k·L + i ≥ T of a last, shorter chunk); every loss term is
            weighted by it and averaged over ``valid.sum()`` steps.
        horizon: T.
        workers: W.
    """

    time_indices: np.ndarray
    worker_indices: np.ndarray
    reset: np.ndarray
    valid: np.ndarray
    horizon: int
    workers: int

    @property
    def count(self) -> int:
        """C, the number of chunks."""
        return self.valid.shape[0]

    @property
    def chunk_length(self) -> int:
        """L, the steps in each chunk (padding included)."""
        return self.valid.shape[1]


def cut_into_chunks(episode_ends, chunk_length: int) -> Chunks:
    """Cut each worker's horizon into consecutive chunks of ``chunk_length`` steps.

    For worker w, chunk k covers the steps t = k·L, …, k·L + L − 1, and

        reset[c, i] = episode_ends[t − 1, w]   for 0 < i and t < T   (a new episode starts at t)
        reset[c, 0] = False                    (the chunk starts from the recorded state)
        valid[c, i] = t < T

    **A horizon that is not a multiple of L** ends each worker's last chunk early: its remaining
    steps are padding, ``valid`` False, indexed at the worker's last step T − 1 so that gathered
    padding is real, finite data that the mask then removes. Padding, rather than an error or
    dropping the remainder, because the horizon (a sample budget) and L (how far back gradients
    reach) are chosen for different reasons and should not constrain each other; dropping would
    never train the last T mod L steps of any cycle; and a fixed ``(C, L)`` shape is what a
    compiled update wants (a shorter chunk would be a new shape, and a retrace).

    Special cases: L = 1 gives one-step chunks that never reset (no back-propagation through
    time: each step starts from its recorded state). L = T gives one chunk per worker. An episode
    that ends at a chunk's last step needs no reset inside that chunk; the next chunk starts from
    the recorded state, which is zero there.

    Args:
        episode_ends: shape ``(T, W)``, True (or 1) where the worker's episode ended at step t for
            any reason, terminated or truncated: ``Trajectories.episode_ends``.
        chunk_length: L, an int in [1, T]; typical 8 to 64.

    Returns:
        :class:`Chunks`, C = W·⌈T / L⌉ of them.
    """
    ends = _check_episode_ends(episode_ends)
    horizon, workers = ends.shape
    if isinstance(chunk_length, (bool, np.bool_)) or not isinstance(chunk_length, (int, np.integer)) or chunk_length < 1:
        raise ValueError(f"`chunk_length` must be a positive int (the steps of one training sequence, typically 8 to "
                         f"64), got {chunk_length!r}.")
    if chunk_length > horizon:
        raise ValueError(f"`chunk_length` ({chunk_length}) is longer than the horizon ({horizon}): every chunk would be "
                         f"mostly padding. Use at most {horizon} (the whole horizon as one sequence).")
    chunk_length = int(chunk_length)
    per_worker = -(-horizon // chunk_length)  # ⌈T / L⌉
    steps = np.arange(per_worker * chunk_length).reshape(per_worker, chunk_length)  # t of (k, i), padding included
    valid = np.tile(steps < horizon, (workers, 1))
    time_indices = np.tile(np.minimum(steps, horizon - 1), (workers, 1)).astype(np.int64)
    worker_indices = np.repeat(np.arange(workers, dtype=np.int64), per_worker)[:, None].repeat(chunk_length, axis=1)
    # The step before each step, and whether that step ended an episode (i = 0 and padding masked off below).
    ended_before = ends[np.maximum(time_indices - 1, 0), worker_indices]
    reset = ended_before & valid
    reset[:, 0] = False
    return Chunks(time_indices, worker_indices, reset, valid, horizon, workers)


def gather_chunks(buffer, chunks: Chunks) -> np.ndarray:
    """A ``(T, W, ...)`` buffer (observations, actions, advantages, …) as ``(C, L, ...)`` chunks.

    ``result[c, i] = buffer[time_indices[c, i], worker_indices[c, i]]``; at padding, a copy of the
    worker's last step.
    """
    buffer = _check_buffer("buffer", buffer, chunks)
    return buffer[chunks.time_indices, chunks.worker_indices]


def chunk_start_states(hidden_states, chunks: Chunks) -> np.ndarray:
    """The recorded hidden state at each chunk's first step: shape ``(C, ...)``.

    ``hidden_states[t, w]`` is the state the policy received together with observation t while
    gathering, before processing it: zero at an episode's first step (the gatherer resets it
    there, also when that step is the first of the cycle). Shape ``(T, W, units)``, or any trailing
    dims; for an LSTM call this once for h and once for c.

        initial_states[c] = hidden_states[k·L, w]   for chunk c = w·K + k
    """
    hidden_states = _check_buffer("hidden_states", hidden_states, chunks)
    return hidden_states[chunks.time_indices[:, 0], chunks.worker_indices[:, 0]]


def _check_episode_ends(episode_ends) -> np.ndarray:
    ends = np.asarray(episode_ends)
    if ends.ndim != 2 or ends.shape[0] == 0 or ends.shape[1] == 0:
        raise ValueError(f"`episode_ends` must have shape (horizon, workers), time first, with both ≥ 1; got shape "
                         f"{ends.shape}. For one worker's steps, add the workers axis: episode_ends[:, None].")
    if ends.dtype != bool:
        if ends.dtype.kind not in "iuf" or not np.isin(ends, (0, 1)).all():
            raise ValueError(f"`episode_ends` must hold True/False (or 1/0) for each step, got values of dtype "
                             f"{ends.dtype} such as {ends.flat[0]!r}; pass Trajectories.episode_ends.")
        ends = ends.astype(bool)
    return ends


def _check_buffer(name, buffer, chunks) -> np.ndarray:
    buffer = np.asarray(buffer)
    if buffer.shape[:2] != (chunks.horizon, chunks.workers):
        raise ValueError(f"`{name}` must have shape (horizon, workers, ...) = ({chunks.horizon}, {chunks.workers}, ...), "
                         f"the shape of the episode_ends the chunks were cut from; got {buffer.shape}.")
    return buffer
