"""Exercise on merging statistics (tutorial 08): what lets many processes share one normaliser.

Each process (or worker) keeps the count, mean and population variance of the observations it
saw. Merging two such summaries must give exactly the statistics of all the data together.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_merge_moments"]


def _summary(data):
    data = np.asarray(data, dtype=np.float64)
    return len(data), data.mean(axis=0) if len(data) else np.zeros(data.shape[1:]), data.var(axis=0) if len(data) else np.ones(data.shape[1:])


def _cases():
    rng = np.random.default_rng(3)
    yield ("two samples of the same size", [1.0, 2.0, 3.0], [7.0, 9.0, 11.0], "")
    yield ("samples of different sizes", [4.0, 4.5], [0.0, 1.0, 2.0, 3.0, 10.0, -1.0], "")
    yield ("observations with 3 features (arrays, elementwise)", rng.normal(0, 1, (5, 3)), rng.normal(2, 3, (9, 3)),
           "Use NumPy operations that work elementwise on arrays as well as on numbers.")
    yield ("the first sample is empty (a process that has seen nothing yet)", np.zeros((0,)), [2.0, 4.0, 9.0],
           "When count_a is 0 return the other summary unchanged (avoid dividing by zero).")


def check_merge_moments(learner_function) -> bool:
    """Check ``learner_function(count_a, mean_a, var_a, count_b, mean_b, var_b) -> (count, mean, var)``.

    ``var`` is the population variance (divide by n). The result must equal ``len``, ``np.mean`` and
    ``np.var`` over both samples together.
    """
    checker = Checker("merging running statistics")
    for name, first, second, hint in _cases():
        count_a, mean_a, var_a = _summary(first)
        count_b, mean_b, var_b = _summary(second)
        inputs = dict(count_a=count_a, mean_a=mean_a, var_a=var_a, count_b=count_b, mean_b=mean_b, var_b=var_b)
        together = np.concatenate([np.asarray(first, dtype=np.float64).reshape((-1,) + np.shape(mean_b)),
                                   np.asarray(second, dtype=np.float64)])
        try:
            with np.errstate(all="ignore"):
                result = learner_function(**{key: np.copy(value) if isinstance(value, np.ndarray) else value for key, value in inputs.items()})
            if result is None:
                return checker.fail(name, "Your function returned None.", inputs,
                                    "Finish the exercise and `return count, mean, var`.")
            count, mean, var = result
        except Exception as error:  # noqa: BLE001
            return checker.crashed(name, error, inputs)
        if not checker.compare(name + " — count", inputs, len(together), count, "The merged count is n_a + n_b."):
            return False
        mean_hint = hint or "Weight each mean by its count: mean = mean_a + δ · n_b / n, not (mean_a + mean_b) / 2."
        variance_hint = hint or ("The merged variance is not the (weighted) average of the two variances: the spread "
                                 "*between* the two means adds δ² · n_a · n_b / n to the sum of squares n_a σ²_a + n_b σ²_b "
                                 "(δ = mean_b − mean_a); then divide by n.")
        if not checker.compare(name + " — mean", inputs, together.mean(axis=0), mean, mean_hint):
            return False
        sample_variance = together.var(axis=0, ddof=1) if len(together) > 1 else None
        if sample_variance is not None and np.allclose(np.asarray(var, dtype=np.float64), sample_variance) and not np.allclose(sample_variance, together.var(axis=0)):
            return checker.fail(name + " — variance", "You returned the sample variance (divided by n − 1).", inputs,
                                "Keep the population variance (divide by n), like np.var: it merges exactly.")
        if not checker.compare(name + " — variance", inputs, together.var(axis=0), var, variance_hint):
            return False
    return checker.passed("Merging is exact, so 1 process or 8 see the same normaliser.")
