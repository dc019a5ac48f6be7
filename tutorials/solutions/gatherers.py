"""Tutorial 02: the behaviour policy of ε-greedy gathering."""

import numpy as np

from dexterity_nb.agent.gather import Gatherer


def behaviour_log_probability(policy_log_probability, n_actions, epsilon):
    """log μ(a|s) with μ = (1 − ε)·π(a|s) + ε/n: mix the probabilities, then take the log."""
    return np.log((1 - epsilon) * np.exp(policy_log_probability) + epsilon / n_actions)


class BehaviourEpsilonGreedyGatherer(Gatherer):
    """ε-greedy gathering that reports the probability of the policy that really acted."""

    epsilon = 0.1

    def select_action(self, predicted_parameters):
        if self.rng.random() < self.epsilon:
            action = self.distribution.action_space.sample()
        else:
            action = self.distribution.sample(*predicted_parameters, rng=self.rng)[0]
        policy_log_probability = self.distribution.log_probability(np.array([action]), *predicted_parameters)[0]
        n_actions = self.distribution.action_space.n
        return action, behaviour_log_probability(policy_log_probability, n_actions, self.epsilon)
