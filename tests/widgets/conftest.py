"""Tiny real agents for the headless widget tests: CartPole, horizon 64, 2 workers."""

import pytest


@pytest.fixture
def make_agent():
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    def make(seed=0, **hyperparameters):
        hyperparameters = {"horizon": 64, "workers": 2, "verbose": False, **hyperparameters}
        return PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", seed=seed),
                        seed=seed, **hyperparameters)

    return make
