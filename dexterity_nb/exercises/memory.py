"""Exercise on memory (tutorial 10): where a recurrent policy's hidden state is reset inside a training chunk.

Training a recurrent policy cuts each worker's horizon of T steps into chunks of L steps
(truncated back-propagation through time). Each chunk starts from the hidden state recorded while
gathering; inside it, the state must be set to zero wherever a new episode begins. The learner
writes that mask for one worker; the reference is ``cut_into_chunks(episode_ends[:, None], L).reset``
from :mod:`dexterity_nb.agent.sequences`, whose docstring explains each rule.

Only ``cut_into_chunks`` is refused: it is the one function of that module that computes the mask.
``gather_chunks`` and ``chunk_start_states`` only index with the ``Chunks`` it returns.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_reset_mask", "RESET_MASK_CASES"]

_START_HINT = ("A chunk's first step (i = 0) is never a reset, even right after an episode end: training starts each "
               "chunk from the hidden state recorded while gathering, which is already zero there. Keep column 0 False.")
_OFF_BY_ONE_HINT = ("You mark the step that *ended* an episode; the reset belongs to the step *after* it, where the new "
                    "episode begins: reset[k, i] = episode_ends[t − 1] with t = k·L + i.")
_PADDING_HINT = ("Steps t ≥ T only fill the last chunk up to L steps; they are padding, not steps, so keep them False. "
                 "In particular episode_ends[T − 1] resets nothing: no step of this cycle follows it.")


def _case(ends_at, horizon, chunk_length, dtype=bool):
    episode_ends = np.zeros(horizon, dtype=dtype)
    episode_ends[list(ends_at)] = 1
    return dict(episode_ends=episode_ends, chunk_length=chunk_length)


# (name, inputs, hint if this case fails). The expected masks, computed by hand, are in the comments
# (rows are chunks, 1 = reset, . = padding).
RESET_MASK_CASES = [
    # t:  0 1 2 3 | 4 5 6 7 | 8 9 . .
    #     0 0 0 1 | 0 0 0 0 | 0 0 0 0   (step 3 follows the end at 2; step 8 follows the end at 7 but starts a chunk)
    ("T = 10, L = 4, episodes end at steps 2 and 7",
     _case([2, 7], horizon=10, chunk_length=4),
     "reset[k, i] = episode_ends[k·L + i − 1] for i > 0 and k·L + i < T, else False: the step after an end starts a "
     "new episode, unless it is a chunk's first step (the recorded state is used there)."),
    # 0 0 0 | 0 0 0 | 0 0 0: both ends are at a chunk's last step
    ("episodes end at the last step of a chunk (T = 9, L = 3, ends at 2 and 5)",
     _case([2, 5], horizon=9, chunk_length=3),
     "An episode that ends at a chunk's last step needs no reset: the next chunk starts from the recorded state, "
     "which the gatherer already set to zero."),
    # 0 0 0 0 | 0 1 0 0: the end at 7 is the cycle's last step
    ("an episode ends at the very last step (T = 8, L = 4, ends at 4 and 7)",
     _case([4, 7], horizon=8, chunk_length=4),
     "The end at the last step T − 1 resets nothing in this cycle: the step after it belongs to the next cycle."),
    # 0 1 0 | 0 0 0 | 0 . .: 9 slots for 7 steps; step 6 starts a chunk; steps 7, 8 are padding
    ("T not a multiple of L: T = 7, L = 3, ends at 0, 5 and 6 (the last chunk has 2 padding steps)",
     _case([0, 5, 6], horizon=7, chunk_length=3),
     "K = ⌈T / L⌉ = 3 chunks; the last one holds step 6 and two padding steps (t = 7, 8), which stay False."),
    # 0 0 | 0 0 | 0 .
    ("no episode ends at all (T = 5, L = 2)",
     _case([], horizon=5, chunk_length=2),
     "Without episode ends there is nothing to reset: every entry is False, padding included."),
    # 0 | 0 | 0 | 0: every step is a chunk's first step
    ("L = 1: one-step chunks (T = 4, ends at 0 and 2)",
     _case([0, 2], horizon=4, chunk_length=1),
     "With L = 1 every step is its chunk's first step and starts from its recorded state: the mask is all False, "
     "shape (T, 1)."),
    # 0 0 0 0 1 0
    ("L = T: the whole horizon is one chunk (T = 6, an end at 3)",
     _case([3], horizon=6, chunk_length=6),
     "With L = T there is one chunk, shape (1, T): reset[0, t] = episode_ends[t − 1] for t ≥ 1."),
    # 0 0 1 | 0 0 1
    ("episode_ends given as 1/0 integers (T = 6, L = 3, ends at 1 and 4)",
     _case([1, 4], horizon=6, chunk_length=3, dtype=np.int64),
     "episode_ends may hold 1/0 instead of True/False: read 1 as True (e.g. `episode_ends.astype(bool)`). Beware "
     "`~episode_ends` on integers: ~1 is −2, not False."),
    # 0 1 1 0 1 | 0 0 1 1 0: one-step episodes give resets side by side
    ("several ends in one chunk (T = 10, L = 5, ends at 0, 1, 3, 6 and 7)",
     _case([0, 1, 3, 6, 7], horizon=10, chunk_length=5),
     "Every step after an end is a reset, however many there are in a chunk (an episode may last a single step)."),
]


def _padded_rows(values, chunk_length):
    """``values`` (length T) padded with False to K·L and cut into rows of L."""
    chunks = -(-len(values) // chunk_length)
    padded = np.zeros(chunks * chunk_length, dtype=bool)
    padded[:len(values)] = values
    return padded.reshape(chunks, chunk_length)


def _off_by_one(episode_ends, chunk_length):
    """What marking the step that ended (episode_ends[t]) gives, with and without column 0 kept False."""
    marked = _padded_rows(np.asarray(episode_ends, dtype=bool), chunk_length)
    without_start = marked.copy()
    without_start[:, 0] = False
    return [(marked, _OFF_BY_ONE_HINT), (without_start, _OFF_BY_ONE_HINT)]


def _shape_hint(got_shape, horizon, chunk_length):
    chunks = -(-horizon // chunk_length)
    wanted = f"shape (K, L) = (⌈T / L⌉, L) = ({chunks}, {chunk_length})"
    if got_shape == (horizon,):
        return (f"You return one entry per step, shape (T,) = ({horizon},). Cut it into chunks: one row per chunk, "
                f"{wanted}, the last row filled up with False where t ≥ T.")
    if got_shape == (chunk_length, chunks) and chunks != chunk_length:
        return f"Rows are chunks and columns the steps inside a chunk: {wanted}, not (L, K). Transpose it."
    if horizon % chunk_length and got_shape == (horizon // chunk_length, chunk_length):
        return (f"You drop the last, shorter chunk (T = {horizon} is not a multiple of L = {chunk_length}). Keep it and "
                f"fill it up to L steps with False (padding): {wanted}.")
    if tuple(size for size in got_shape if size != 1) == tuple(size for size in (chunks, chunk_length) if size != 1):
        return f"Remove the extra axes of length 1: this is one worker's mask, {wanted}."
    if int(np.prod(got_shape)) == chunks * chunk_length:
        return f"The number of entries is right; arrange them as {wanted} (e.g. `.reshape(K, L)`)."
    return f"Return one row per chunk, {wanted}: pad the T steps with False up to K·L, then reshape."


def _hint(inputs, expected, got, case_hint):
    """The hint for this answer: a shape, a non-0/1 value, or where the wrong entries are."""
    episode_ends, chunk_length = inputs["episode_ends"], inputs["chunk_length"]
    if got is None:
        return case_hint
    try:
        got = as_array(got)
    except (TypeError, ValueError):
        return case_hint
    if got.shape != expected.shape:
        return _shape_hint(got.shape, len(episode_ends), chunk_length)
    if not np.isin(got, (0.0, 1.0)).all():
        return ("A mask holds True/False (1/0 is fine too); your result has other values. Build it from comparisons "
                "or `astype(bool)`, not from sums or `~` on integers.")
    wrong = got != expected
    at_start = np.zeros_like(wrong)
    at_start[:, 0] = True
    padding = (np.arange(expected.size) >= len(episode_ends)).reshape(expected.shape)
    if not (wrong & ~at_start).any():
        return _START_HINT
    if not (wrong & ~padding).any():
        return _PADDING_HINT
    if not (wrong & ~(at_start | padding)).any():
        return _START_HINT + " Or: " + _PADDING_HINT
    return case_hint


def check_reset_mask(learner_function) -> bool:
    """Check ``learner_function(episode_ends, chunk_length) -> reset`` for one worker.

    ``episode_ends``: shape (T,), True (or 1) where the worker's episode ended at step t.
    ``chunk_length``: L. The result has shape (K, L), K = ⌈T / L⌉, and for t = k·L + i

        reset[k, i] = episode_ends[t − 1]   for i > 0 and t < T   (a new episode begins at t)
        reset[k, i] = False                 at i = 0 (the chunk starts from the recorded state) and at t ≥ T

    which is ``cut_into_chunks(episode_ends[:, None], L).reset``. True/False or 1/0 values are both accepted.
    """
    from dexterity_nb.agent.sequences import cut_into_chunks

    checker = Checker("reset mask of training chunks", forbidden=[cut_into_chunks])
    for name, inputs, case_hint in RESET_MASK_CASES:
        expected = cut_into_chunks(inputs["episode_ends"][:, None], inputs["chunk_length"]).reset
        ok, got = checker.call(name, learner_function, inputs, case_hint)
        if not ok:
            return False
        if not checker.compare(name, inputs, expected, got, _hint(inputs, expected, got, case_hint),
                               mistakes=_off_by_one(**inputs)):
            return False
    return checker.passed("The recurrent update multiplies the carried state by (1 − reset) exactly at these steps.")
