"""Transformer, distribution, model-builder, callback and statistics checkers: solutions pass, mistakes fail."""

import keras
import numpy as np
import pytest
from solutions.callbacks import StopWhenSolved
from solutions.distributions import gaussian_log_probability
from solutions.models import build_small
from solutions.scaling import merge_moments
from solutions.transformers import RewardScaleTransformer

from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.exercises import (
    check_gaussian_log_probability,
    check_merge_moments,
    check_model_builder,
    check_reward_scale_transformer,
    check_stop_when_solved,
)


def _rejects(checker, wrong, words, capsys):
    assert checker(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output, output


# -- transformer -------------------------------------------------------------------------------
def test_transformer_accepts_solution():
    assert check_reward_scale_transformer(RewardScaleTransformer) is True


class DividingTransformer(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards / self.scale


class InPlaceTransformer(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        rewards *= self.scale
        return rewards


class ForgetfulTransformer(RewardScaleTransformer):
    def config(self):
        return {}


class StateScalingTransformer(RewardScaleTransformer):
    def transform_state(self, states, update=True):
        return states * self.scale


class NotATransformer:
    def __init__(self, scale):
        self.scale = scale


@pytest.mark.parametrize("wrong, words", [
    (DividingTransformer, "Multiply"),
    (InPlaceTransformer, "in place"),
    (ForgetfulTransformer, "config()"),
    (StateScalingTransformer, "Only rewards"),
    (NotATransformer, "subclass of BaseTransformer"),
])
def test_transformer_rejects_mistakes(wrong, words, capsys):
    _rejects(check_reward_scale_transformer, wrong, words, capsys)


# -- Gaussian ----------------------------------------------------------------------------------
def test_gaussian_accepts_solution():
    assert check_gaussian_log_probability(gaussian_log_probability) is True


@pytest.mark.parametrize("wrong, words", [
    (lambda actions, mean, log_std: -0.5 * np.sum(((actions - mean) / np.exp(log_std)) ** 2 + 2 * log_std, axis=-1), "constant log 2π"),
    (lambda actions, mean, log_std: -0.5 * np.sum(((actions - mean) / np.where(log_std == 0, 1e-12, log_std)) ** 2 + 2 * log_std + np.log(2 * np.pi), axis=-1), "*log* of σ"),
    (lambda actions, mean, log_std: -0.5 * (((actions - mean) / np.exp(log_std)) ** 2 + 2 * log_std + np.log(2 * np.pi)), "Sum over the last axis"),
    (lambda actions, mean, log_std: -0.5 * np.sum(((actions - mean) / np.exp(log_std)) ** 2 + np.log(2 * np.pi), axis=-1), "2 log σ"),
])
def test_gaussian_rejects_mistakes(wrong, words, capsys):
    _rejects(check_gaussian_log_probability, wrong, words, capsys)


# -- model builder -----------------------------------------------------------------------------
def test_model_builder_accepts_solution():
    assert check_model_builder(build_small) is True


def builder_fixed_head(observation_space, distribution, shared):
    inputs = keras.Input(observation_space.shape)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    value_hidden = hidden if shared else keras.layers.Dense(8, activation="tanh")(inputs)
    return keras.Model(inputs, [keras.layers.Dense(2)(hidden)]), keras.Model(inputs, keras.layers.Dense(1)(value_hidden))


def builder_value_without_head(observation_space, distribution, shared):
    inputs = keras.Input(observation_space.shape)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return keras.Model(inputs, distribution.build_heads(hidden)), keras.Model(inputs, hidden)


def builder_always_shared(observation_space, distribution, shared):
    inputs = keras.Input(observation_space.shape)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return keras.Model(inputs, distribution.build_heads(hidden)), keras.Model(inputs, keras.layers.Dense(1)(hidden))


def builder_never_shared(observation_space, distribution, shared):
    return build_small(observation_space, distribution, False)


def builder_returning_one_model(observation_space, distribution, shared):
    return build_small(observation_space, distribution, shared)[0]


@pytest.mark.parametrize("wrong, words", [
    (builder_fixed_head, "build_heads"),
    (builder_value_without_head, "Dense(1)"),
    (builder_always_shared, "shared=False"),
    (builder_never_shared, "shared=True"),
    (builder_returning_one_model, "raised"),
])
def test_model_builder_rejects_mistakes(wrong, words, capsys):
    _rejects(check_model_builder, wrong, words, capsys)


# -- callback ----------------------------------------------------------------------------------
def test_callback_accepts_solution():
    assert check_stop_when_solved(StopWhenSolved) is True


class StopOnOneCycle(Callback):
    def __init__(self, threshold, window):
        self.threshold = threshold

    def on_cycle_end(self, agent, stats):
        if stats["mean_return"] >= self.threshold:
            agent.stop_drill()


class NaNPoisoned(Callback):
    def __init__(self, threshold, window):
        self.threshold, self.window, self.returns = threshold, window, []

    def on_cycle_end(self, agent, stats):
        self.returns.append(stats["mean_return"])
        if len(self.returns) >= self.window and np.mean(self.returns[-self.window:]) >= self.threshold:
            agent.stop_drill()


class NeverStops(Callback):
    def __init__(self, threshold, window):
        pass


@pytest.mark.parametrize("wrong, words", [
    (StopOnOneCycle, "Average the last"),
    (NaNPoisoned, "NaN"),
    (NeverStops, "never asked to stop"),
    (dict, "subclass of Callback"),
])
def test_callback_rejects_mistakes(wrong, words, capsys):
    _rejects(check_stop_when_solved, wrong, words, capsys)


# -- merging statistics ------------------------------------------------------------------------
def test_merge_accepts_solution():
    assert check_merge_moments(merge_moments) is True


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
