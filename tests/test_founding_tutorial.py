"""The founding tutorial's code, as written (with `dexterity` renamed), must run and learn."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
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


def test_founding_tutorial_runs_as_written_and_learns(capsys):
    from dexterity_nb.common.transformers import StateNormalizationTransformer
    from dexterity_nb.common.wrappers import make_env

    env = make_env("CartPole-v1", transformers=[StateNormalizationTransformer])

    from dexterity_nb.models import get_model_builder
    from dexterity_nb.agent.ppo_agent import PPOAgent

    model_builder = get_model_builder("simple", "ffn")
    agent = PPOAgent(
        model_builder,
        env,
        horizon=512,
        workers=12
    )
    agent.assign_gatherer(EpsilonGreedyGatherer)
    agent.drill(10, 3, 64)

    output = capsys.readouterr().out
    assert "Using [StateNormalizationTransformer] for preprocessing." in output
    assert "Cycle    10/10:" in output
    history = agent.history
    assert history[-1]["frames"] == 10 * 512 * 12 and history[-1]["updates"] == 10 * 288
    # Unseeded, as in the tutorial: the bar is well below what it reaches (≈ 500) but far above random (≈ 22).
    assert max(entry["mean_return"] for entry in history[-3:]) > 150
    assert agent.evaluate(5).mean_return > 150
