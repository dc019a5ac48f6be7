"""The exact permutation test: hand-solvable cases, and scipy's exact test as the reference."""

import math

import numpy as np
import pytest
from scipy import stats

from dexterity_nb.common.statistics import permutation_test, smallest_p_value


def test_fully_separated_groups_of_three_give_the_smallest_possible_p():
    # 20 splits of {1..6} into two triples; only {1,2,3}|{4,5,6} and its mirror have |d| >= 3.
    result = permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert result.difference == pytest.approx(3.0)
    assert result.splits == 20
    assert result.p_value == pytest.approx(2 / 20)
    assert result.smallest_p_value == pytest.approx(0.1)


def test_unequal_sizes_by_hand():
    # pooled {1, 2, 3}, groups of 2 and 1: d = 3 − 1.5 = 1.5, 2 − 2 = 0, 1 − 2.5 = −1.5.
    result = permutation_test([1.0, 2.0], [3.0])
    assert result.difference == pytest.approx(1.5)
    assert result.splits == 3
    assert result.p_value == pytest.approx(2 / 3)


def test_identical_groups_give_p_one():
    # every split has difference 0 (up to rounding), as large as the observed 0
    assert permutation_test([0.1, 0.1, 0.1], [0.1, 0.1, 0.1]).p_value == 1.0


@pytest.mark.parametrize("n_first, n_second, seed", [(3, 3, 0), (4, 4, 1), (5, 5, 2), (7, 7, 3)])
def test_agrees_with_scipys_exact_permutation_test(n_first, n_second, seed):
    rng = np.random.default_rng(seed)
    first = rng.normal(0.0, 1.0, n_first)
    second = rng.normal(1.0, 1.0, n_second)
    reference = stats.permutation_test(
        (second, first), lambda y, x, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        permutation_type="independent", alternative="two-sided", n_resamples=np.inf, vectorized=True)
    result = permutation_test(first, second)
    assert result.difference == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


@pytest.mark.parametrize("n, expected", [(3, 0.1), (4, 2 / 70), (5, 2 / 252), (10, 2 / 184756)])
def test_smallest_p_value_for_n_seeds_per_side(n, expected):
    assert smallest_p_value(n, n) == pytest.approx(expected)
    separated = permutation_test(np.arange(n), np.arange(n) + 100.0)
    assert separated.p_value == pytest.approx(expected)


def test_smallest_p_value_with_unequal_sizes():
    assert smallest_p_value(2, 3) == pytest.approx(1 / math.comb(5, 2))


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ValueError, match="`second` contains NaN.*np.nanmean"):
        permutation_test([1.0, 2.0], [1.0, math.nan])
    with pytest.raises(ValueError, match="`first` must be a 1-D sequence"):
        permutation_test([], [1.0])
    with pytest.raises(ValueError, match="at most 10 numbers per side"):
        permutation_test(np.arange(12.0), np.arange(12.0))
    with pytest.raises(ValueError, match="`n_first` must be a positive int"):
        smallest_p_value(0, 3)
