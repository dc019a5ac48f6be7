"""Exercise on merging statistics (tutorial 08): what lets many processes share one normaliser.

Each process (or worker) keeps the count, mean and population variance of the observations it
saw. Merging two such summaries must give exactly the statistics of all the data together. A
process that has seen nothing holds what a fresh ``RunningMeanStd`` holds: count 0, mean 0,
variance 1; merging with it must return the other summary unchanged.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_merge_moments"]

_EMPTY_HINT = ("When one side is empty (count 0) return the other summary unchanged, as the exercise says: "
               "`if count_a == 0: return count_b, mean_b, var_b` (and the same the other way round).")


def _summary(data):
    """(count, mean, var) of ``data`` (samples first), or a fresh RunningMeanStd's (0, 0, 1) when empty."""
    data = np.asarray(data, dtype=np.float64)
    if len(data) == 0:
        return 0, np.zeros(data.shape[1:]), np.ones(data.shape[1:])
    return len(data), data.mean(axis=0), data.var(axis=0)


def _cases():
    """(name, first sample, second sample, hint for this case or '' for the general hints)."""
    rng = np.random.default_rng(3)
    yield ("two samples of the same size", [1.0, 2.0, 3.0], [7.0, 9.0, 11.0], "")
    yield ("samples of different sizes", [4.0, 4.5], [0.0, 1.0, 2.0, 3.0, 10.0, -1.0], "")
    yield ("one observation on each side (each variance is 0)", [2.0], [5.0], "")
    yield ("observations with 3 features (arrays, elementwise)", rng.normal(0, 1, (5, 3)), rng.normal(2, 3, (9, 3)),
           "Use NumPy operations that work elementwise on arrays as well as on numbers.")
    yield ("the first side is empty (a process that has seen nothing yet)", np.zeros((0,)), [2.0, 4.0, 9.0], _EMPTY_HINT)
    yield ("the second side is empty", [1.0, -3.0], np.zeros((0,)), _EMPTY_HINT)
    yield ("both sides are empty", np.zeros((0,)), np.zeros((0,)), _EMPTY_HINT)


def _expected(first, second):
    together = np.concatenate([np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)])
    return _summary(together)


def check_merge_moments(learner_function) -> bool:
    """Check ``learner_function(count_a, mean_a, var_a, count_b, mean_b, var_b) -> (count, mean, var)``.

    ``var`` is the population variance (divide by n). The result must equal ``len``, ``np.mean`` and
    ``np.var`` over both samples together; with one side empty, the other side's summary (both
    empty: a fresh summary, count 0, mean 0, variance 1). Called with the six values by position.
    """
    from dexterity_nb.common.transformers import merge_moments

    checker = Checker("merging running statistics", forbidden=[merge_moments])
    for name, first, second, hint in _cases():
        count_a, mean_a, var_a = _summary(first)
        count_b, mean_b, var_b = _summary(second)
        inputs = dict(count_a=count_a, mean_a=mean_a, var_a=var_a, count_b=count_b, mean_b=mean_b, var_b=var_b)
        count, mean, var = _expected(first, second)
        ok, result = checker.call(name, learner_function, inputs, hint or None)
        if not ok:
            return False
        if result is None:
            checker.cases += 1
            return checker.fail(name, "Your function returned None.", inputs, "Finish the exercise and `return count, mean, var`.")
        if not (isinstance(result, (tuple, list)) and len(result) == 3):
            checker.cases += 1
            return checker.fail(name, f"Your function returned {result!r:.100}; expected three values.", inputs,
                                "Return the merged summary as `return count, mean, var`.")
        got_count, got_mean, got_var = result
        if not checker.compare(name + " — count", inputs, count, got_count, hint or "The merged count is n_a + n_b."):
            return False
        mean_hint = hint or "Weight each mean by its count: mean = mean_a + δ · n_b / n, not (mean_a + mean_b) / 2."
        variance_hint = hint or ("The merged variance is not the (weighted) average of the two variances: the spread "
                                 "*between* the two means adds δ² · n_a · n_b / n to the sum of squares n_a σ²_a + n_b σ²_b "
                                 "(δ = mean_b − mean_a); then divide by n.")
        if not checker.compare(name + " — mean", inputs, mean, got_mean, mean_hint):
            return False
        if count > 1:
            sample_variance = var * count / (count - 1)
            mistakes = [(sample_variance, "You returned the sample variance (divided by n − 1). Keep the population "
                                          "variance (divide by n), like np.var: it merges exactly.")]
        else:
            mistakes = []
        if not checker.compare(name + " — variance", inputs, var, got_var, variance_hint, mistakes=mistakes):
            return False
    return checker.passed("Merging is exact, so 1 process or 8 see the same normaliser.")
