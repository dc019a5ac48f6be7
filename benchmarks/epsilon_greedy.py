"""The founding tutorial's custom gatherer, as a learner would write it (dexterity -> dexterity_nb).

Kept word for word apart from the package name: it draws a Python random number per step,
and in 10% of steps samples from the action space and calls the distribution's
`log_probability` on a tensor, which is exactly the cost the benchmark wants to see.
"""

import random

import tensorflow as tf

from dexterity_nb.agent.gather import Gatherer


class EpsilonGreedyGatherer(Gatherer):

    def select_action(self, predicted_parameters: list):
        if random.random() < 0.9:
            action, action_probability = super(EpsilonGreedyGatherer, self).select_action(predicted_parameters)
        else:
            action = self.distribution.action_space.sample()
            action_probability = self.distribution.log_probability(tf.expand_dims(action, 0), *predicted_parameters)

        return action, action_probability
