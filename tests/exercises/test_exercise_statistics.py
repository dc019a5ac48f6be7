"""The merge-moments checker (tutorial 08): right merges pass however they are written; unweighted
means, missing spread, sample variances, empty sides and in-place updates are named."""

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.common.transformers import RunningMeanStd, merge_moments as packaged_merge
from dexterity_nb.exercises import check_merge_moments


def merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b):
    if count_a == 0:
        return count_b, mean_b, var_b
    if count_b == 0:
        return count_a, mean_a, var_a
    count = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * count_b / count
    return count, mean, (var_a * count_a + var_b * count_b + delta**2 * count_a * count_b / count) / count


def merge_by_sums_renamed(n1, m1, v1, n2, m2, v2):
    """Through sums and sums of squares, with its own names."""
    n = n1 + n2
    if n == 0:
        return n, m1, v1
    total = n1 * m1 + n2 * m2
    squares = n1 * (v1 + m1**2) + n2 * (v2 + m2**2)
    mean = total / n
    return n, mean, squares / n - mean**2


def merge_tensorflow(count_a, mean_a, var_a, count_b, mean_b, var_b):
    if count_a == 0 or count_b == 0:
        return (count_b, mean_b, var_b) if count_a == 0 else (count_a, mean_a, var_a)
    count = count_a + count_b
    delta = tf.constant(mean_b) - mean_a
    mean = mean_a + delta * (count_b / count)
    return count, mean, (var_a * count_a + var_b * count_b + tf.square(delta) * (count_a * count_b / count)) / count


@pytest.mark.parametrize("right", [merge_moments, merge_by_sums_renamed, merge_tensorflow])
def test_merge_accepts_right_answers(right, verdict):
    passes, output = verdict(check_merge_moments, right)
    assert passes is True, output


def merge_equal_weights(count_a, mean_a, var_a, count_b, mean_b, var_b):
    return count_a + count_b, (mean_a + mean_b) / 2, (var_a + var_b) / 2


def merge_unweighted_mean(count_a, mean_a, var_a, count_b, mean_b, var_b):
    count, _, var = merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b)
    return count, (mean_a + mean_b) / 2, var


def merge_without_spread(count_a, mean_a, var_a, count_b, mean_b, var_b):
    count = count_a + count_b
    return count, (count_a * mean_a + count_b * mean_b) / count, (count_a * var_a + count_b * var_b) / count


def merge_sample_variance(count_a, mean_a, var_a, count_b, mean_b, var_b):
    count, mean, var = merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b)
    return count, mean, var * count / (count - 1)


def merge_without_guard(count_a, mean_a, var_a, count_b, mean_b, var_b):
    count = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * count_b / count
    return count, mean, (var_a * count_a + var_b * count_b + delta**2 * count_a * count_b / count) / count


def merge_returning_the_empty_side(count_a, mean_a, var_a, count_b, mean_b, var_b):
    if count_a == 0:
        return count_a, mean_a, var_a
    return merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b)


def merge_into_a(count_a, mean_a, var_a, count_b, mean_b, var_b):
    """Right numbers, but the caller's mean_a is updated in place (as a running statistic might)."""
    count, mean, var = merge_moments(count_a, np.copy(mean_a), var_a, count_b, mean_b, var_b)
    if isinstance(mean_a, np.ndarray) and mean_a.ndim:
        mean_a[...] = mean
        return count, mean_a, var
    return count, mean, var


def merge_two_values(count_a, mean_a, var_a, count_b, mean_b, var_b):
    return count_a + count_b, merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b)[1]


def merge_with_the_package(count_a, mean_a, var_a, count_b, mean_b, var_b):
    statistics = RunningMeanStd(np.shape(mean_a))
    statistics.count, statistics.mean, statistics.var = count_a, mean_a, var_a
    other = RunningMeanStd(np.shape(mean_b))
    other.count, other.mean, other.var = count_b, mean_b, var_b
    statistics.merge(other)
    return statistics.count, statistics.mean, statistics.var


@pytest.mark.parametrize("wrong, words", [
    (merge_equal_weights, "not the (weighted) average of the two variances"),
    (merge_unweighted_mean, "Weight each mean by its count"),
    (merge_without_spread, "spread *between* the two means"),
    (merge_sample_variance, "sample variance (divided by n − 1)"),
    (merge_without_guard, "both sides are empty"),
    (merge_returning_the_empty_side, "return the other summary unchanged"),
    (merge_into_a, "changed its argument 2, `mean_a`, in place"),
    (merge_two_values, "expected three values"),
    (merge_with_the_package, "merge_moments`, the package's own implementation"),
    (packaged_merge, "the package's own implementation"),
])
def test_merge_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_merge_moments, wrong)
    assert passes is False
    assert "✗" in output and words in output, output
