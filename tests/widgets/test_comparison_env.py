"""Comparison's env_options: every run is made with the same make_env keywords (e.g. no velocities)."""

import numpy as np
import pytest

from dexterity_nb.models import get_model_builder
from dexterity_nb.widgets.comparison import Comparison

HYPERPARAMETERS = {"horizon": 16, "workers": 2}


def test_env_options_reach_every_run_of_every_variant():
    comparison = Comparison({"feed-forward": {}, "GRU": {"model_builder": get_model_builder("simple", "gru"),
                                                         "chunk_length": 8}},
                            env="CartPole-v1", env_options={"mask_velocity": True}, seeds=[0, 1], cycles=1,
                            epochs=1, batch_size=16, hyperparameters=HYPERPARAMETERS, mode="text")
    assert comparison.outcome == "completed"
    for name, results in comparison.results.items():
        assert len(results.agents) == 2, name
        for agent in results.agents:
            # CartPole's (x, ẋ, θ, θ̇) without the velocities: (x, θ)
            assert agent.env.observation_space.shape == (2,), name
            assert agent.env.recipe["mask_velocity"] is True, name
    assert [agent.recurrent for agent in comparison.results["GRU"].agents] == [True, True]
    assert comparison.threshold == 475  # still CartPole-v1's reward_threshold
    assert "mask_velocity" in repr(comparison)


def test_without_env_options_the_task_keeps_its_velocities():
    comparison = Comparison({"PPO": {}}, env="CartPole-v1", seeds=1, cycles=1, epochs=1, batch_size=16,
                            hyperparameters=HYPERPARAMETERS, mode="text")
    observation, _ = comparison.results["PPO"].agents[0].env.reset(seed=0)
    assert np.shape(observation) == (4,)


@pytest.mark.parametrize("options, message", [
    ({"seed": 3}, "seeds="),
    ({"transformers": ["state"]}, "per variant"),
    (["mask_velocity"], "dict of make_env keywords"),
])
def test_env_options_refuses_what_the_comparison_sets_itself(options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Comparison({"PPO": {}}, env="CartPole-v1", env_options=options, seeds=1, cycles=1, mode="text", start=False)
