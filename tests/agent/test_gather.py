import numpy as np
import pytest

from dexterity_nb.agent.gather import Gatherer, GathererError
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder


def small_agent(**options):
    settings = dict(horizon=16, workers=3, seed=0, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"]), **settings)


class PassThroughGatherer(Gatherer):
    """Overrides select_action but changes nothing: must give the same data as the fast path."""

    def select_action(self, predicted_parameters):
        return super().select_action(predicted_parameters)


def test_custom_gatherer_path_equals_the_batched_fast_path():
    fast, slow = small_agent(), small_agent()
    slow.assign_gatherer(PassThroughGatherer)
    fast_data = fast.rollout.gather(fast._policy_forward, 16)
    slow_data = slow.rollout.gather(slow._policy_forward, 16)
    np.testing.assert_array_equal(fast_data.actions, slow_data.actions)
    np.testing.assert_allclose(fast_data.log_probabilities, slow_data.log_probabilities, rtol=1e-5)
    np.testing.assert_array_equal(fast_data.observations, slow_data.observations)


def test_workers_have_independent_streams_and_own_envs():
    agent = small_agent()
    gatherers = agent.rollout.gatherers
    assert len({id(g.env) for g in gatherers}) == 3
    draws = [g.rng.random() for g in gatherers]
    assert len(set(draws)) == 3
    assert [g.worker_id for g in gatherers] == [0, 1, 2]


def test_episode_bookkeeping_reports_original_rewards():
    agent = small_agent(horizon=200)
    data = agent.rollout.gather(agent._policy_forward, 200)
    assert data.episode_returns and data.episode_returns == [float(n) for n in data.episode_lengths]
    assert data.episode_ends.sum() == len(data.episode_returns)
    # At an episode end the next observation is the final one, not the reset one.
    t, w = map(int, np.argwhere(data.episode_ends)[0])
    if t + 1 < 200:
        assert not np.array_equal(data.next_observations[t, w], data.observations[t + 1, w])


class OutsideGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        return 7, -0.5


class ShapeGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        return 0, np.zeros(3)


class NanGatherer(Gatherer):
    def select_action(self, predicted_parameters):
        return 0, float("nan")


@pytest.mark.parametrize("gatherer, message", [
    (OutsideGatherer, "OutsideGatherer.select_action returned the action 7, which is outside Discrete"),
    (ShapeGatherer, "ShapeGatherer.select_action returned a log-probability of shape"),
    (NanGatherer, "NanGatherer.select_action returned the log-probability nan"),
])
def test_bad_gatherer_output_is_named_and_nothing_is_lost(gatherer, message):
    agent = small_agent()
    agent.drill(1, 1, 16, verbose=False)
    weights = [w.copy() for w in agent.policy.get_weights()]
    agent.assign_gatherer(gatherer)
    with pytest.raises(GathererError, match=message):
        agent.drill(1, 1, 16, verbose=False)
    assert agent.cycle == 1 and len(agent.history) == 1
    for before, after in zip(weights, agent.policy.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_assign_gatherer_rejects_non_gatherers():
    agent = small_agent()
    with pytest.raises(TypeError, match="subclass of dexterity_nb.agent.gather.Gatherer"):
        agent.assign_gatherer(object)
    with pytest.raises(TypeError, match="not an instance"):
        agent.assign_gatherer(Gatherer(0, None, None, None))


def test_observations_without_transformers_are_copies_not_the_vector_envs_buffer():
    """The vector env hands out one buffer it overwrites at every step (copy=False): each recorded
    observation must be the state of its own step."""
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1"), horizon=40, workers=2, seed=0,
                     verbose=False)
    data = agent.rollout.gather(agent._policy_forward, 40)
    continuing = ~data.episode_ends[:-1]
    np.testing.assert_array_equal(data.next_observations[:-1][continuing], data.observations[1:][continuing])
    assert len({observation.tobytes() for observation in data.observations[:, 0]}) == 40  # no two steps alike
    assert not np.shares_memory(agent.rollout.observations, agent.rollout.vector_env._observations)
