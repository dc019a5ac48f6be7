"""The gatherer checkers (tutorial 02) accept right answers however they are written, for any number
of actions, and reject the founding tutorial's log-probability and other typical mistakes."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.exercises import check_behaviour_log_probability, check_mixture_gatherer
from dexterity_nb.exercises.gatherers import _behaviour_log_probability


# -- behaviour log-probability -------------------------------------------------------------------
def behaviour_numpy(policy_log_probability, n_actions, epsilon):
    return np.log((1 - epsilon) * np.exp(policy_log_probability) + epsilon / n_actions)


def behaviour_renamed_logaddexp(log_pi, n, eps):
    with np.errstate(divide="ignore"):  # log 0 = −inf at ε = 0 and ε = 1 is fine for logaddexp
        return np.logaddexp(np.log(1 - eps) + log_pi, np.log(eps / n))


def behaviour_tensorflow(policy_log_probability, n_actions, epsilon):
    policy = tf.exp(tf.constant(policy_log_probability, tf.float64))
    return tf.math.log((1 - epsilon) * policy + epsilon / n_actions)


def behaviour_loops(policy_log_probability, n_actions, epsilon):
    values = np.atleast_1d(policy_log_probability)
    mixed = [math.log((1 - epsilon) * math.exp(value) + epsilon / n_actions) for value in values]
    return mixed[0] if np.ndim(policy_log_probability) == 0 else mixed


@pytest.mark.parametrize("right", [behaviour_numpy, behaviour_renamed_logaddexp, behaviour_tensorflow, behaviour_loops])
def test_behaviour_log_probability_accepts_right_answers(right, verdict):
    passes, output = verdict(check_behaviour_log_probability, right)
    assert passes is True, output
    assert "✓" in output


def behaviour_in_place(policy_log_probability, n_actions, epsilon):
    if isinstance(policy_log_probability, np.ndarray):
        np.exp(policy_log_probability, out=policy_log_probability)
        policy_log_probability *= 1 - epsilon
        policy_log_probability += epsilon / n_actions
        return np.log(policy_log_probability)
    return behaviour_numpy(policy_log_probability, n_actions, epsilon)


def behaviour_with_math(policy_log_probability, n_actions, epsilon):
    return math.log((1 - epsilon) * math.exp(policy_log_probability) + epsilon / n_actions)


def behaviour_of_the_checker(policy_log_probability, n_actions, epsilon):
    return _behaviour_log_probability(policy_log_probability, n_actions, epsilon)


@pytest.mark.parametrize("wrong, words", [
    (lambda log_pi, n, eps: log_pi, "policy's* log-probability"),
    (lambda log_pi, n, eps: (1 - eps) * log_pi + eps * np.log(1 / n), "Mix probabilities, not log-probabilities"),
    (lambda log_pi, n, eps: np.log((1 - eps) * np.exp(log_pi) + eps), "ε / n, not ε"),
    (lambda log_pi, n, eps: np.log(0.9 * np.exp(log_pi) + 0.1 / n), "not a fixed 0.1"),
    (lambda log_pi, n, eps: np.log((1 - eps) * np.exp(log_pi) + eps / 2), "not a fixed 2"),
    (lambda log_pi, n, eps: (1 - eps) * np.exp(log_pi) + eps / n, "That is μ itself; return its log"),
    (lambda log_pi, n, eps: np.log(eps * np.exp(log_pi) + (1 - eps) / n), "the *random* branch"),
    (behaviour_in_place, "changed its argument 1, `policy_log_probability`, in place"),
    (behaviour_with_math, "Use NumPy functions"),
    (behaviour_of_the_checker, "the package's own implementation"),
])
def test_behaviour_log_probability_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_behaviour_log_probability, wrong)
    assert passes is False
    assert "✗" in output and words in output, output


# -- ε-greedy gatherer: right answers ------------------------------------------------------------
class BehaviourGatherer(Gatherer):
    """The exercise's answer: sample from π or uniformly, return log μ of the action."""

    epsilon = 0.1

    def select_action(self, predicted_parameters):
        if self.rng.random() < self.epsilon:
            action = self.distribution.action_space.sample()
        else:
            action = self.distribution.sample(*predicted_parameters, rng=self.rng)[0]
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        n = self.distribution.action_space.n
        return action, np.log((1 - self.epsilon) * np.exp(log_pi) + self.epsilon / n)


class SuperAndIntegersGatherer(Gatherer):
    """Another right answer: super() for the policy's branch, self.rng.integers(n), ε set per instance."""

    def __init__(self, worker_id, env, distribution, rng):
        super().__init__(worker_id, env, distribution, rng)
        self.epsilon = 0.25

    def select_action(self, predicted_parameters):
        n = self.env.action_space.n
        if self.rng.random() >= self.epsilon:
            action, _ = super().select_action(predicted_parameters)
        else:
            action = int(self.rng.integers(n))
        probabilities = tf.nn.softmax(predicted_parameters[0][0]).numpy()
        return action, float(np.log((1 - self.epsilon) * probabilities[action] + self.epsilon / n))


@pytest.mark.parametrize("right", [BehaviourGatherer, SuperAndIntegersGatherer])
def test_mixture_gatherer_accepts_right_answers(right, verdict):
    passes, output = verdict(check_mixture_gatherer, right)
    assert passes is True, output
    assert "all 5 cases pass" in output


# -- ε-greedy gatherer: wrong answers ------------------------------------------------------------
class FoundingTutorialGatherer(Gatherer):
    """The founding tutorial's version: right actions, but the policy's log-probability."""

    def select_action(self, predicted_parameters):
        if self.rng.random() < 0.9:
            return super().select_action(predicted_parameters)
        action = self.distribution.action_space.sample()
        return action, self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]


class BranchLogProbabilityGatherer(Gatherer):
    """Returns log(ε/n) for random actions and log((1−ε)π) for sampled ones: the branch, not μ."""

    def select_action(self, predicted_parameters):
        if self.rng.random() < 0.1:
            return self.distribution.action_space.sample(), np.log(0.1 / self.distribution.action_space.n)
        action, log_probability = super().select_action(predicted_parameters)
        return action, np.log(0.9) + log_probability


class NoExplorationGatherer(Gatherer):
    epsilon = 0.3

    def select_action(self, predicted_parameters):
        return super().select_action(predicted_parameters)


class TwoActionsGatherer(BehaviourGatherer):
    """Right for CartPole only: the random branch and μ assume 2 actions."""

    def select_action(self, predicted_parameters):
        action = int(self.rng.integers(2)) if self.rng.random() < self.epsilon else \
            self.distribution.sample(*predicted_parameters, rng=self.rng)[0]
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        return action, np.log((1 - self.epsilon) * np.exp(log_pi) + self.epsilon / 2)


class TwoActionsInMuGatherer(BehaviourGatherer):
    """Chooses among all actions, but μ uses n = 2."""

    def select_action(self, predicted_parameters):
        action, _ = super().select_action(predicted_parameters)
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        return action, np.log((1 - self.epsilon) * np.exp(log_pi) + self.epsilon / 2)


class ArgmaxGatherer(BehaviourGatherer):
    """Classical ε-greedy: the most likely action instead of a sample from π."""

    def select_action(self, predicted_parameters):
        if self.rng.random() < self.epsilon:
            action = self.distribution.action_space.sample()
        else:
            action = int(np.argmax(predicted_parameters[0][0]))
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        return action, np.log((1 - self.epsilon) * np.exp(log_pi) + self.epsilon / self.distribution.action_space.n)


class LogitsChangingGatherer(BehaviourGatherer):
    """Right choices and numbers, but it writes the softmax into the logits it was given."""

    def select_action(self, predicted_parameters):
        logits = predicted_parameters[0]
        logits -= logits.max()
        return super().select_action(predicted_parameters)


class ProbabilityGatherer(BehaviourGatherer):
    """Returns μ instead of log μ."""

    def select_action(self, predicted_parameters):
        action, log_mu = super().select_action(predicted_parameters)
        return action, np.exp(log_mu)


class GlobalRandomGatherer(BehaviourGatherer):
    """Right numbers, but the coin comes from NumPy's global stream: runs cannot be repeated."""

    def select_action(self, predicted_parameters):
        if np.random.random() < self.epsilon:
            action = int(self.rng.integers(self.distribution.action_space.n))
        else:
            action = self.distribution.sample(*predicted_parameters, rng=self.rng)[0]
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        n = self.distribution.action_space.n
        return action, np.log((1 - self.epsilon) * np.exp(log_pi) + self.epsilon / n)


class PlaceholderGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        raise NotImplementedError()


class UnfinishedGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        ...


class CheckersReferenceGatherer(BehaviourGatherer):
    def select_action(self, predicted_parameters):
        action, _ = super().select_action(predicted_parameters)
        log_pi = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        return action, _behaviour_log_probability(log_pi, self.distribution.action_space.n, self.epsilon)


@pytest.mark.parametrize("wrong, words", [
    (FoundingTutorialGatherer, "founding tutorial"),
    (BranchLogProbabilityGatherer, "whichever branch"),
    (NoExplorationGatherer, "never takes the random branch"),
    (TwoActionsGatherer, "among all n actions"),
    (TwoActionsInMuGatherer, "not 2"),
    (ArgmaxGatherer, "*sample* from π"),
    (LogitsChangingGatherer, "`predicted_parameters`, in place"),
    (ProbabilityGatherer, "the agent would refuse this"),
    (GlobalRandomGatherer, "the worker's own stream"),
    (PlaceholderGatherer, "Replace `raise NotImplementedError()`"),
    (UnfinishedGatherer, "returned None"),
    (CheckersReferenceGatherer, "the package's own implementation"),
    (object, "subclass of Gatherer"),
])
def test_mixture_gatherer_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_mixture_gatherer, wrong)
    assert passes is False
    assert "✗" in output and words.lower() in output.lower(), output


def test_a_right_gatherer_trains_in_an_agent():
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", ["state"]), horizon=16, workers=2,
                     seed=0, verbose=False)
    agent.assign_gatherer(BehaviourGatherer)
    history = agent.drill(2, 1, 32, verbose=False)
    assert len(history) == 2 and np.isfinite(history[-1]["policy_loss"])
