"""Chunks of a cycle for truncated BPTT, against trajectories written out by hand."""

import numpy as np
import pytest

from dexterity_nb.agent.sequences import Chunks, chunk_start_states, cut_into_chunks, gather_chunks

F, T = False, True


def ends_at(horizon, *steps):
    """One worker's episode_ends, shape (horizon, 1), True at the given steps."""
    ends = np.zeros((horizon, 1), dtype=bool)
    ends[list(steps), 0] = True
    return ends


def test_an_episode_ending_inside_a_chunk_resets_the_next_step():
    chunks = cut_into_chunks(ends_at(6, 1), chunk_length=3)  # steps 0 1 | 2 ...: a new episode starts at t = 2
    np.testing.assert_array_equal(chunks.reset, [[F, F, T], [F, F, F]])
    np.testing.assert_array_equal(chunks.time_indices, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(chunks.worker_indices, [[0, 0, 0], [0, 0, 0]])
    assert chunks.valid.all() and (chunks.count, chunks.chunk_length, chunks.horizon, chunks.workers) == (2, 3, 6, 1)


def test_an_episode_ending_at_a_chunk_boundary_needs_no_reset():
    # The episode ends at the last step of chunk 0; chunk 1 starts from the recorded state (zero).
    chunks = cut_into_chunks(ends_at(6, 2), chunk_length=3)
    assert not chunks.reset.any()


def test_an_episode_ending_at_the_very_first_step():
    chunks = cut_into_chunks(ends_at(6, 0), chunk_length=3)
    np.testing.assert_array_equal(chunks.reset, [[F, T, F], [F, F, F]])


def test_a_horizon_not_a_multiple_of_the_chunk_length_pads_the_last_chunk():
    chunks = cut_into_chunks(ends_at(7, 4, 6), chunk_length=3)  # 7 = 3 + 3 + 1
    np.testing.assert_array_equal(chunks.time_indices, [[0, 1, 2], [3, 4, 5], [6, 6, 6]])
    np.testing.assert_array_equal(chunks.valid, [[T, T, T], [T, T, T], [T, F, F]])
    # t = 5 follows the end at 4; the end at the horizon's last step (6) resets nothing, least of all padding.
    np.testing.assert_array_equal(chunks.reset, [[F, F, F], [F, F, T], [F, F, F]])


def test_several_workers_each_get_their_own_consecutive_chunks():
    ends = np.array([  # worker 0 ends at t = 0 and 3, worker 1 at t = 2
        [T, F],
        [F, F],
        [F, T],
        [T, F],
        [F, F],
    ])
    chunks = cut_into_chunks(ends, chunk_length=2)
    np.testing.assert_array_equal(chunks.time_indices, [[0, 1], [2, 3], [4, 4]] * 2)
    np.testing.assert_array_equal(chunks.worker_indices, [[0, 0]] * 3 + [[1, 1]] * 3)
    np.testing.assert_array_equal(chunks.valid, [[T, T], [T, T], [T, F]] * 2)
    np.testing.assert_array_equal(chunks.reset, [[F, T], [F, F], [F, F],  # worker 0: t = 1; t = 4 starts a chunk
                                                 [F, F], [F, T], [F, F]])  # worker 1: t = 3


def test_special_chunk_lengths():
    ends = ends_at(4, 0, 2)
    one_step = cut_into_chunks(ends, chunk_length=1)
    assert one_step.reset.shape == (4, 1) and not one_step.reset.any()  # every step starts from its recorded state
    whole = cut_into_chunks(ends, chunk_length=4)
    np.testing.assert_array_equal(whole.reset, [[F, T, F, T]])
    assert isinstance(whole, Chunks)


def test_integer_episode_ends_are_accepted_like_booleans():
    as_ints = cut_into_chunks(ends_at(6, 1).astype(np.float32), chunk_length=3)
    np.testing.assert_array_equal(as_ints.reset, cut_into_chunks(ends_at(6, 1), chunk_length=3).reset)


def test_gather_chunks_and_start_states_index_the_buffers():
    ends = np.zeros((5, 2), dtype=bool)
    chunks = cut_into_chunks(ends, chunk_length=2)
    steps, workers = np.meshgrid(np.arange(5), np.arange(2), indexing="ij")
    buffer = 10 * steps + workers  # (T, W): the value names its step and worker
    np.testing.assert_array_equal(gather_chunks(buffer, chunks), [[0, 10], [20, 30], [40, 40],
                                                                  [1, 11], [21, 31], [41, 41]])
    observations = np.stack([buffer, -buffer, buffer * 2], axis=-1)  # (T, W, 3)
    assert gather_chunks(observations, chunks).shape == (6, 2, 3)
    np.testing.assert_array_equal(gather_chunks(observations, chunks)[4, 1], [31, -31, 62])
    hidden_states = observations.astype(np.float32)  # (T, W, units)
    np.testing.assert_array_equal(chunk_start_states(hidden_states, chunks)[:, 0], [0, 20, 40, 1, 21, 41])
    assert chunk_start_states(hidden_states, chunks).shape == (6, 3)


def test_replaying_the_chunks_reproduces_the_gathered_hidden_states():
    """A toy recurrent cell, h ← h + x, zero at each episode's first step: replayed chunk by chunk
    from the recorded start states with the reset mask, it must give the states gathering had."""
    rng = np.random.default_rng(3)
    horizon, workers, units, chunk_length = 23, 3, 2, 5
    ends = rng.random((horizon, workers)) < 0.15
    inputs = rng.normal(size=(horizon, workers, units))
    hidden_states = np.empty((horizon, workers, units))
    state = rng.normal(size=(workers, units))  # episodes carried over from the previous cycle
    for t in range(horizon):  # gathering: record the state each step receives, then advance it
        hidden_states[t] = state
        state = np.where(ends[t][:, None], 0.0, state + inputs[t])
    chunks = cut_into_chunks(ends, chunk_length)
    chunk_inputs = gather_chunks(inputs, chunks)
    state = chunk_start_states(hidden_states, chunks)
    replayed = np.empty((chunks.count, chunk_length, units))
    for i in range(chunk_length):  # the recurrent update: reset, record, advance
        state = np.where(chunks.reset[:, i, None], 0.0, state)
        replayed[:, i] = state
        state = state + chunk_inputs[:, i]
    expected = gather_chunks(hidden_states, chunks)
    np.testing.assert_allclose(replayed[chunks.valid], expected[chunks.valid])
    assert chunks.valid.sum() == horizon * workers


def test_bad_input_says_what_came_and_what_to_do():
    ends = np.zeros((8, 2), dtype=bool)
    for length in (0, -1, 2.0, True, "4"):
        with pytest.raises(ValueError, match=r"`chunk_length` must be a positive int .* got"):
            cut_into_chunks(ends, length)
    with pytest.raises(ValueError, match=r"`chunk_length` \(9\) is longer than the horizon \(8\).*at most 8"):
        cut_into_chunks(ends, 9)
    with pytest.raises(ValueError, match=r"shape \(horizon, workers\).*got shape \(8,\).*episode_ends\[:, None\]"):
        cut_into_chunks(np.zeros(8, dtype=bool), 4)
    with pytest.raises(ValueError, match=r"got shape \(0, 2\)"):
        cut_into_chunks(np.zeros((0, 2), dtype=bool), 1)
    with pytest.raises(ValueError, match="True/False \\(or 1/0\\)"):
        cut_into_chunks(np.full((8, 2), 2), 4)
    chunks = cut_into_chunks(ends, 4)
    with pytest.raises(ValueError, match=r"`hidden_states` must have shape \(horizon, workers, \.\.\.\) = \(8, 2, \.\.\.\).*"
                                         r"got \(2, 8, 16\)"):
        chunk_start_states(np.zeros((2, 8, 16)), chunks)
    with pytest.raises(ValueError, match=r"`buffer` must have shape"):
        gather_chunks(np.zeros((8,)), chunks)
