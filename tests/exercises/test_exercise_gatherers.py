"""The gatherer checkers accept the solutions and reject the founding tutorial's log-probability."""

import numpy as np
import pytest
from solutions.gatherers import BehaviourEpsilonGreedyGatherer, behaviour_log_probability

from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.exercises import check_behaviour_log_probability, check_mixture_gatherer


def test_behaviour_log_probability_accepts_solution(capsys):
    assert check_behaviour_log_probability(behaviour_log_probability) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda policy_log_probability, n_actions, epsilon: policy_log_probability, "policy's* log-probability"),
    (lambda policy_log_probability, n_actions, epsilon: (1 - epsilon) * policy_log_probability + epsilon * np.log(1 / n_actions),
     "Mix probabilities, not log-probabilities"),
    (lambda policy_log_probability, n_actions, epsilon: np.log((1 - epsilon) * np.exp(policy_log_probability) + epsilon),
     "ε / n"),
    (lambda policy_log_probability, n_actions, epsilon: np.log(0.9 * np.exp(policy_log_probability) + 0.1 / n_actions),
     "4 actions, ε = 0.25"),
    (lambda policy_log_probability, n_actions, epsilon: np.log((1 - epsilon) * np.exp(policy_log_probability) + epsilon / 2),
     "4 actions"),
])
def test_behaviour_log_probability_rejects_mistakes(wrong, words, capsys):
    assert check_behaviour_log_probability(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output


def test_mixture_gatherer_accepts_solution(capsys):
    assert check_mixture_gatherer(BehaviourEpsilonGreedyGatherer) is True


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
            return self.distribution.action_space.sample(), np.log(0.1 / 2)
        action, log_probability = super().select_action(predicted_parameters)
        return action, np.log(0.9) + log_probability


class NoExplorationGatherer(Gatherer):
    """Never takes the random branch."""

    epsilon = 0.3

    def select_action(self, predicted_parameters):
        return super().select_action(predicted_parameters)


class UnfinishedGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        ...


@pytest.mark.parametrize("wrong, words", [
    (FoundingTutorialGatherer, "founding tutorial"),
    (BranchLogProbabilityGatherer, "whichever branch"),
    (NoExplorationGatherer, "frequencies"),
    (UnfinishedGatherer, "returned None"),
    (object, "subclass of Gatherer"),
])
def test_mixture_gatherer_rejects_mistakes(wrong, words, capsys):
    assert check_mixture_gatherer(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output


def test_the_solution_trains_in_an_agent():
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", ["state"]), horizon=16, workers=2,
                     seed=0, verbose=False)
    agent.assign_gatherer(BehaviourEpsilonGreedyGatherer)
    history = agent.drill(2, 1, 32, verbose=False)
    assert len(history) == 2 and np.isfinite(history[-1]["policy_loss"])
