"""The explained-variance checker (tutorial 09) accepts right answers however they are written and
names the typical mistakes."""

import math
import statistics

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent import objectives
from dexterity_nb.exercises import check_explained_variance


def explained_variance(values, returns):
    """A right answer: 1 − Var[R − V] / Var[R], NaN when all returns are equal."""
    values, returns = np.asarray(values, dtype=float), np.asarray(returns, dtype=float)
    spread = np.var(returns)
    if spread == 0:
        return float("nan")
    return 1.0 - np.var(returns - values) / spread


def _rejects(wrong, words, capsys):
    assert check_explained_variance(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output, output


def test_accepts_the_solution(capsys):
    assert check_explained_variance(explained_variance) is True
    assert "✓ explained variance: all 6 cases pass" in capsys.readouterr().out


def with_loops(predictions, targets):  # renamed parameters, plain Python, sample variances (n − 1)
    predictions = [float(value) for value in np.ravel(predictions)]
    targets = [float(value) for value in np.ravel(targets)]
    spread = statistics.variance(targets)
    if spread == 0:
        return math.nan
    return 1 - statistics.variance([t - p for t, p in zip(targets, predictions)]) / spread


def with_tensorflow(values, returns):
    returns = tf.constant(returns, tf.float64)
    spread = tf.math.reduce_variance(returns)
    if spread == 0:
        return tf.constant(math.nan)
    return 1.0 - tf.math.reduce_variance(returns - values) / spread


def with_a_one_element_array(values, returns):
    return np.array([explained_variance(values, returns)])


@pytest.mark.parametrize("right", [with_loops, with_tensorflow, with_a_one_element_array])
def test_accepts_right_answers_written_differently(right):
    assert check_explained_variance(right) is True


def ratio_of_variances(values, returns):
    return np.var(values) / np.var(returns)


def without_dividing(values, returns):
    return 1 - np.var(returns - values)


def with_standard_deviations(values, returns):
    if np.std(returns) == 0:
        return math.nan
    return 1 - np.std(returns - values) / np.std(returns)


def swapped(returns, values):  # the learner's parameters in the other order
    return 1 - np.var(returns - values) / np.var(returns)


def swapped_with_a_guard(returns, values):
    if np.var(returns) == 0:
        return math.nan
    return 1 - np.var(returns - values) / np.var(returns)


def unguarded(values, returns):
    return 1 - np.var(returns - values) / np.var(returns)


def unguarded_in_plain_python(values, returns):
    values, returns = [float(v) for v in np.ravel(values)], [float(r) for r in np.ravel(returns)]
    return 1 - statistics.pvariance([r - v for r, v in zip(returns, values)]) / statistics.pvariance(returns)


def zero_when_constant(values, returns):
    return 0.0 if np.var(returns) == 0 else explained_variance(values, returns)


def mean_squared_error(values, returns):  # R², not EV
    return math.nan if np.var(returns) == 0 else 1 - np.mean((returns - values) ** 2) / np.var(returns)


def per_worker(values, returns):
    return 1 - np.var(returns - values, axis=0) / np.var(returns, axis=0)


def unfinished(values, returns):
    ...


def centring_in_place(values, returns):  # right number, but the caller's returns are changed
    returns -= np.mean(returns)
    return explained_variance(values - np.mean(values), returns)


def of_the_package(values, returns):
    return objectives.explained_variance(values, returns)


@pytest.mark.parametrize("wrong, words", [
    (ratio_of_variances, "Var[V] / Var[R]"),
    (without_dividing, "forgot to divide by Var[R]"),
    (with_standard_deviations, "np.var, not np.std"),
    (swapped, "the other way round"),
    (swapped_with_a_guard, "the other way round"),
    (unguarded, "Check for Var[R] = 0 first"),
    (unguarded_in_plain_python, "ZeroDivisionError"),
    (zero_when_constant, "exactly as good as the mean"),
    (mean_squared_error, "mean squared error"),
    (per_worker, "one number"),
    (unfinished, "returned None"),
    (centring_in_place, "changed its argument 2, `returns`, in place"),
    (of_the_package, "objectives.explained_variance`, the package's own implementation"),
    (objectives.explained_variance, "the package's own implementation"),
])
def test_rejects_typical_mistakes_with_their_hint(wrong, words, capsys):
    _rejects(wrong, words, capsys)


def test_reports_a_crash_instead_of_raising(capsys):
    def crashing(values, returns):
        raise IndexError("index 9 is out of bounds")

    _rejects(crashing, "IndexError", capsys)
