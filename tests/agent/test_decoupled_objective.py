"""The decoupled objective (issue 13): clip π_θ/π_old, weight each sample by min(π_old/μ, c̄)."""

import numpy as np
import pytest

from dexterity_nb.agent import objectives
from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder


def test_behaviour_weights_on_hand_computed_numbers():
    old = np.log([0.5, 0.2, 0.9])  # π_old(a|s)
    behaviour = np.log([0.25, 0.4, 0.9])  # μ(a|s)
    np.testing.assert_allclose(objectives.behaviour_weights(old, behaviour, bound=1.0), [1.0, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(objectives.behaviour_weights(old, behaviour, bound=3.0), [2.0, 0.5, 1.0], rtol=1e-6)


def test_the_weighted_surrogate_on_hand_computed_numbers():
    # ρ = [1.5, 0.5], A = [1, 1], ε = 0.2: min(ρA, clip(ρ)A) = [1.2, 0.5]; weights [0.5, 1]: −(0.6 + 0.5) / 2
    new, old = np.log([0.6, 0.1]), np.log([0.4, 0.2])
    loss = objectives.clipped_surrogate_loss(new, old, np.array([1.0, 1.0]), 0.2, behaviour_weights=np.array([0.5, 1.0]))
    assert float(loss) == pytest.approx(-0.55, rel=1e-6)


def test_weights_of_one_give_plain_ppo_to_the_last_bit():
    rng = np.random.default_rng(0)
    new, old = np.log(rng.uniform(0.05, 1, 64)), np.log(rng.uniform(0.05, 1, 64))
    advantages = rng.normal(size=64)
    plain = objectives.clipped_surrogate_loss(new, old, advantages, 0.2)
    weighted = objectives.clipped_surrogate_loss(new, old, advantages, 0.2,
                                                 behaviour_weights=objectives.behaviour_weights(old, old))
    assert float(plain) == float(weighted)


class UniformGatherer(Gatherer):
    """Acts uniformly at random and says so: log μ(a|s) = −log n."""

    def select_action(self, predicted_parameters):
        n = self.distribution.action_space.n
        return int(self.rng.integers(n)), -np.log(n)


class PolicyGatherer(Gatherer):
    """Overrides select_action but acts exactly as the default: μ = π_old."""

    def select_action(self, predicted_parameters):
        return super().select_action(predicted_parameters)


def small_agent(model_type="ffn", **options):
    builder = get_model_builder("simple", model_type, hidden_units=(8,), **({} if model_type == "ffn" else {"recurrent_units": 8}))
    return PPOAgent(builder, make_env("CartPole-v1", mask_velocity=model_type != "ffn"), horizon=16, workers=3, seed=1,
                    verbose=False, **options)


def gathered(agent):
    agent._policy_forward_refresh()
    return agent.rollout.gather(agent._policy_forward, agent.horizon)


@pytest.mark.parametrize("model_type", ["ffn", "gru"])
def test_a_uniform_gatherer_gets_weights_n_times_pi_old(model_type):
    agent = small_agent(model_type, behaviour_weight_bound=1000.0)
    agent.assign_gatherer(UniformGatherer)
    data = gathered(agent)
    old, weights = agent._behaviour_correction(data)
    np.testing.assert_allclose(data.log_probabilities, -np.log(2))
    np.testing.assert_allclose(weights, 2 * np.exp(old), rtol=1e-5)  # π_old / (1/n) = n·π_old
    capped = small_agent(model_type)
    capped.assign_gatherer(UniformGatherer)
    _, capped_weights = capped._behaviour_correction(gathered(capped))
    assert capped_weights.max() <= 1.0 and capped_weights.min() > 0


@pytest.mark.parametrize("model_type", ["ffn", "gru"])
def test_the_agent_recomputes_pi_old_as_gathering_saw_it(model_type):
    agent = small_agent(model_type)
    agent.assign_gatherer(PolicyGatherer)
    data = gathered(agent)
    old, weights = agent._behaviour_correction(data)
    np.testing.assert_allclose(old, data.log_probabilities, atol=1e-5)
    np.testing.assert_allclose(weights, 1.0, atol=1e-4)


def test_the_default_gatherer_uses_its_own_log_probabilities_and_weight_one():
    agent = small_agent()
    data = gathered(agent)
    old, weights = agent._behaviour_correction(data)
    assert old is data.log_probabilities and np.all(weights == 1.0)
    entry = agent.drill(1, 1, 16, verbose=False)[-1]
    assert entry["behaviour_weight_mean"] == 1.0 and entry["behaviour_weight_max"] == 1.0


def test_the_history_reports_how_far_the_gatherer_acted_from_the_policy():
    agent = small_agent()
    agent.assign_gatherer(UniformGatherer)
    entry = agent.drill(1, 1, 16, verbose=False)[-1]
    # A near-uniform fresh policy: π_old ≈ 1/2, so π_old/μ ≈ 1; never above n·max π_old ≤ 2.
    assert 0.5 < entry["behaviour_weight_mean"] < 1.5 and entry["behaviour_weight_max"] <= 2.0
    assert entry["clip_fraction"] < 0.5  # the ratio is centred on π_old, not on μ


@pytest.mark.parametrize("bound", [0, -1, float("nan"), "1"])
def test_a_bad_bound_is_named(bound):
    with pytest.raises(ValueError, match="`behaviour_weight_bound`"):
        small_agent(behaviour_weight_bound=bound)


def test_the_bound_is_saved_and_loaded(tmp_path):
    agent = small_agent(behaviour_weight_bound=2.5)
    assert PPOAgent.load(agent.save(tmp_path / "bound.npz")).behaviour_weight_bound == 2.5
