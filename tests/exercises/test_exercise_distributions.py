"""The Gaussian log-probability checker (tutorial 04): right answers in NumPy, TensorFlow, loops
and SciPy pass; each typical slip is named."""

import math

import gymnasium
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from dexterity_nb.common.policies import Gaussian
from dexterity_nb.exercises import check_gaussian_log_probability

LOG_TWO_PI = np.log(2 * np.pi)


def gaussian_numpy(actions, mean, log_std):
    z = (actions - mean) / np.exp(log_std)
    return -0.5 * np.sum(z**2 + 2 * log_std + LOG_TWO_PI, axis=-1)


def gaussian_renamed_tensorflow(a, mu, log_sigma):
    sigma = tf.exp(log_sigma)
    return tf.reduce_sum(-0.5 * tf.square((a - mu) / sigma) - log_sigma - 0.5 * math.log(2 * math.pi), axis=-1)


def gaussian_loops(actions, mean, log_std):
    result = []
    for row_actions, row_mean, row_log_std in zip(actions, mean, log_std):
        total = 0.0
        for a, mu, log_sigma in zip(row_actions, row_mean, row_log_std):
            total += -0.5 * ((a - mu) / math.exp(log_sigma)) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
        result.append(total)
    return result


def gaussian_scipy(actions, mean, log_std):
    return stats.norm.logpdf(actions, loc=mean, scale=np.exp(log_std)).sum(axis=1)


@pytest.mark.parametrize("right", [gaussian_numpy, gaussian_renamed_tensorflow, gaussian_loops, gaussian_scipy])
def test_gaussian_accepts_right_answers(right, verdict):
    passes, output = verdict(check_gaussian_log_probability, right)
    assert passes is True, output
    assert "all 5 cases pass" in output


def z(actions, mean, log_std):
    return (actions - mean) / np.exp(log_std)


def standardising_in_place(actions, mean, log_std):
    actions -= mean
    actions /= np.exp(log_std)
    return -0.5 * np.sum(actions**2 + 2 * log_std + LOG_TWO_PI, axis=-1)


def the_package(actions, mean, log_std):
    return Gaussian(gymnasium.spaces.Box(-1, 1, (actions.shape[1],))).log_probability(actions, mean, log_std)


@pytest.mark.parametrize("wrong, words", [
    (lambda a, m, s: -0.5 * np.sum(z(a, m, s) ** 2 + 2 * s, axis=-1), "constant log 2π"),
    (lambda a, m, s: -0.5 * np.sum(((a - m) / np.where(s == 0, 1e-12, s)) ** 2 + 2 * s + LOG_TWO_PI, axis=-1), "*log* of σ"),
    (lambda a, m, s: -0.5 * (z(a, m, s) ** 2 + 2 * s + LOG_TWO_PI), "Sum over the last axis"),
    (lambda a, m, s: -0.5 * np.sum(z(a, m, s) ** 2 + LOG_TWO_PI, axis=-1), "2 log σ"),
    (lambda a, m, s: -0.5 * np.sum(z(a, m, s) ** 2 + s + LOG_TWO_PI, axis=-1), "log σ² = 2 log σ"),
    (lambda a, m, s: -0.5 * np.sum(((a - m) / np.exp(2 * s)) ** 2 + 2 * s + LOG_TWO_PI, axis=-1), "not by the variance"),
    (lambda a, m, s: -0.5 * np.sum(z(a, m, s) ** 2 + 2 * s, axis=-1) - 0.5 * LOG_TWO_PI, "once *per action dimension*"),
    (lambda a, m, s: -0.5 * np.mean(z(a, m, s) ** 2 + 2 * s + LOG_TWO_PI, axis=-1), "not mean"),
    (lambda a, m, s: 0.5 * np.sum(z(a, m, s) ** 2 + 2 * s + LOG_TWO_PI, axis=-1), "Mind the sign"),
    (standardising_in_place, "changed its argument 1, `actions`, in place"),
    (the_package, "Gaussian.log_probability`, the package's own implementation"),
])
def test_gaussian_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_gaussian_log_probability, wrong)
    assert passes is False
    assert "✗" in output and words in output, output
