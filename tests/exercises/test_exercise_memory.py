"""The reset-mask checker (tutorial 10) accepts right answers however they are written and names the
typical mistakes."""

import functools

import numpy as np
import pytest

from dexterity_nb.agent import sequences
from dexterity_nb.exercises import check_reset_mask


# -- right answers -------------------------------------------------------------------------------
def reset_mask_loop(episode_ends, chunk_length):
    horizon = len(episode_ends)
    chunks = (horizon + chunk_length - 1) // chunk_length
    reset = np.zeros((chunks, chunk_length), dtype=bool)
    for k in range(chunks):
        for i in range(1, chunk_length):
            t = k * chunk_length + i
            if t < horizon and episode_ends[t - 1]:
                reset[k, i] = True
    return reset


def reset_mask_vectorised(episode_ends, chunk_length):
    horizon = len(episode_ends)
    chunks = -(-horizon // chunk_length)
    previous_ended = np.zeros(chunks * chunk_length, dtype=bool)
    previous_ended[1:horizon] = np.asarray(episode_ends[:-1], dtype=bool)
    reset = previous_ended.reshape(chunks, chunk_length)
    reset[:, 0] = False
    return reset


def reset_mask_renamed(done, length):
    steps = np.arange(-(-len(done) // length) * length).reshape(-1, length)  # t of each (k, i)
    inside = (steps % length > 0) & (steps < len(done))
    return inside & (np.asarray(done)[np.clip(steps - 1, 0, len(done) - 1)] == 1)


def reset_mask_as_integers(episode_ends, chunk_length):
    return reset_mask_loop(episode_ends, chunk_length).astype(int)


def reset_mask_as_lists(episode_ends, chunk_length):
    ends = [bool(end) for end in episode_ends]
    rows = []
    for start in range(0, len(ends), chunk_length):
        rows.append([i > 0 and start + i < len(ends) and ends[start + i - 1] for i in range(chunk_length)])
    return rows


@pytest.mark.parametrize("right", [reset_mask_loop, reset_mask_vectorised, reset_mask_renamed, reset_mask_as_integers,
                                   reset_mask_as_lists])
def test_accepts_right_answers_written_differently(right, verdict):
    passes, output = verdict(check_reset_mask, right)
    assert passes is True, output
    assert "✓ reset mask of training chunks: all 9 cases pass" in output


# -- wrong answers -------------------------------------------------------------------------------
def _rows(values, chunk_length, fill=False):
    """``values`` filled up with ``fill`` to a multiple of ``chunk_length``, one row per chunk."""
    values = np.asarray(values, dtype=bool)
    chunks = -(-len(values) // chunk_length)
    padded = np.full(chunks * chunk_length, fill)
    padded[:len(values)] = values
    return padded.reshape(chunks, chunk_length)


def _previous_ended(episode_ends):
    """episode_ends[t − 1] for each step t (False at t = 0)."""
    return np.concatenate([[False], np.asarray(episode_ends[:-1], dtype=bool)])


def reset_at_chunk_starts(episode_ends, chunk_length):
    return _rows(_previous_ended(episode_ends), chunk_length)


def marking_the_step_that_ended(episode_ends, chunk_length):
    reset = _rows(episode_ends, chunk_length)
    reset[:, 0] = False
    return reset


def padding_reads_past_the_last_step(episode_ends, chunk_length):
    """Shifts by prepending False without dropping episode_ends[T − 1], which lands on the padding."""
    shifted = np.concatenate([[False], np.asarray(episode_ends, dtype=bool)])
    chunks = -(-len(episode_ends) // chunk_length)
    reset = np.zeros(chunks * chunk_length, dtype=bool)
    reset[:min(len(shifted), reset.size)] = shifted[:reset.size]
    reset = reset.reshape(chunks, chunk_length)
    reset[:, 0] = False
    return reset


def padding_at_the_last_step(episode_ends, chunk_length):
    """Indexes padding at T − 1 (as the buffers do) but forgets to mask it."""
    horizon = len(episode_ends)
    steps = np.arange(-(-horizon // chunk_length) * chunk_length).reshape(-1, chunk_length)
    reset = np.asarray(episode_ends, dtype=bool)[np.maximum(np.minimum(steps, horizon - 1) - 1, 0)]
    reset[:, 0] = False
    return reset


def padding_with_true(episode_ends, chunk_length):
    reset = _rows(_previous_ended(episode_ends), chunk_length, fill=True)
    reset[:, 0] = False
    return reset


def one_entry_per_step(episode_ends, chunk_length):
    previous = _previous_ended(episode_ends)
    previous[::chunk_length] = False
    return previous


def dropping_the_last_chunk(episode_ends, chunk_length):
    return reset_mask_loop(episode_ends, chunk_length)[:len(episode_ends) // chunk_length]


def transposed(episode_ends, chunk_length):
    return reset_mask_loop(episode_ends, chunk_length).T


def with_a_workers_axis(episode_ends, chunk_length):
    return reset_mask_loop(episode_ends, chunk_length)[:, :, None]


def plus_or_minus_one(episode_ends, chunk_length):
    return np.where(reset_mask_loop(episode_ends, chunk_length), 1, -1)


def only_the_first_end_of_each_chunk(episode_ends, chunk_length):
    reset = reset_mask_loop(episode_ends, chunk_length)
    for row in reset:
        if row.any():
            row[row.argmax() + 1:] = False
    return reset


def shifting_in_place(episode_ends, chunk_length):
    """Right mask, but the shift is written into the caller's episode_ends."""
    episode_ends[1:] = episode_ends[:-1].copy()
    episode_ends[0] = False
    reset = _rows(episode_ends, chunk_length)
    reset[:, 0] = False
    return reset


def unfinished(episode_ends, chunk_length):
    ...


def placeholder(episode_ends, chunk_length):
    raise NotImplementedError()


def of_the_package(episode_ends, chunk_length):
    return sequences.cut_into_chunks(np.asarray(episode_ends)[:, None], chunk_length).reset


@pytest.mark.parametrize("wrong, words", [
    (reset_at_chunk_starts, "A chunk's first step (i = 0) is never a reset"),
    (marking_the_step_that_ended, "You mark the step that *ended* an episode"),
    (padding_reads_past_the_last_step, "they are padding, not steps, so keep them False"),
    (padding_at_the_last_step, "they are padding, not steps, so keep them False"),
    (padding_with_true, "they are padding, not steps, so keep them False"),
    (one_entry_per_step, "You return one entry per step, shape (T,) = (10,)"),
    (dropping_the_last_chunk, "You drop the last, shorter chunk"),
    (transposed, "not (L, K). Transpose it"),
    (with_a_workers_axis, "Remove the extra axes of length 1"),
    (plus_or_minus_one, "A mask holds True/False"),
    (only_the_first_end_of_each_chunk, "however many there are in a chunk"),
    (shifting_in_place, "changed its argument 1, `episode_ends`, in place"),
    (unfinished, "returned None"),
    (placeholder, "the exercise is not written yet"),
    (of_the_package, "sequences.cut_into_chunks`, the package's own implementation"),
    (functools.partial(of_the_package), "the package's own implementation"),
])
def test_rejects_typical_mistakes_with_their_hint(wrong, words, verdict):
    passes, output = verdict(check_reset_mask, wrong)
    assert passes is False
    assert "✗" in output and words in output, output


def test_a_crash_keeps_the_case_hint_and_shows_the_failing_line(verdict):
    def past_the_end(episode_ends, chunk_length):
        chunks = -(-len(episode_ends) // chunk_length)
        reset = np.zeros((chunks, chunk_length), dtype=bool)
        for t in range(1, chunks * chunk_length):  # forgets t < T: reads episode_ends[T] on the padding
            reset[t // chunk_length, t % chunk_length] = t % chunk_length > 0 and episode_ends[t - 1]
        return reset

    passes, output = verdict(check_reset_mask, past_the_end)
    assert passes is False
    assert "IndexError" in output
    assert "episode_ends[t - 1]" in output, output
    assert "reset[k, i] = episode_ends[k·L + i − 1]" in output, output  # the first case's own hint
