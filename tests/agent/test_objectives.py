import numpy as np
import pytest

from dexterity_nb.agent.objectives import (
    approximate_kl,
    clip_fraction,
    clipped_surrogate_loss,
    generalized_advantage_estimates,
    value_loss,
)


def gae(rewards, values, next_values, terminated, ends, discount=0.9, lam=0.5):
    advantages, returns = generalized_advantage_estimates(
        np.array(rewards, float), np.array(values, float), np.array(next_values, float),
        np.array(terminated, float), np.array(ends, float), discount, lam,
    )
    return advantages, returns


def test_gae_by_hand_on_a_three_step_trajectory_cut_by_the_horizon():
    # δ0 = 1 + 0.9·2 − 1 = 1.8, δ1 = 0 + 0.9·3 − 2 = 0.7, δ2 = 2 + 0.9·4 − 3 = 2.6
    advantages, returns = gae([1, 0, 2], [1, 2, 3], [2, 3, 4], [0, 0, 0], [0, 0, 0])
    a2 = 2.6
    a1 = 0.7 + 0.45 * a2
    a0 = 1.8 + 0.45 * a1
    np.testing.assert_allclose(advantages, [a0, a1, a2])
    np.testing.assert_allclose(returns, np.array([a0, a1, a2]) + [1, 2, 3])


def test_terminated_step_does_not_bootstrap_and_stops_the_sum():
    advantages, _ = gae([1, 5], [0.5, 1.0], [9.0, 2.0], [1, 0], [1, 0])
    # δ0 = 1 + 0 − 0.5 (V(s1)=9 ignored: terminal); A0 does not include A1 (another episode).
    assert advantages[0] == pytest.approx(0.5)
    assert advantages[1] == pytest.approx(5 + 0.9 * 2 - 1)


def test_truncated_step_bootstraps_from_the_final_observation_but_stops_the_sum():
    advantages, _ = gae([1, 5], [0.5, 1.0], [9.0, 2.0], [0, 0], [1, 0])
    assert advantages[0] == pytest.approx(1 + 0.9 * 9 - 0.5)


def test_lambda_zero_is_td_error_and_lambda_one_is_monte_carlo():
    rewards, values, next_values = [1, 1, 1], [0.2, 0.3, 0.4], [0.3, 0.4, 0.0]
    td, _ = gae(rewards, values, next_values, [0, 0, 1], [0, 0, 1], discount=0.9, lam=0.0)
    np.testing.assert_allclose(td, np.array(rewards) + 0.9 * np.array(next_values) * [1, 1, 0] - values)
    mc, returns = gae(rewards, values, next_values, [0, 0, 1], [0, 0, 1], discount=0.9, lam=1.0)
    np.testing.assert_allclose(returns, [1 + 0.9 + 0.81, 1 + 0.9, 1])


def test_gae_handles_workers_as_trailing_dimension():
    rewards = np.array([[1.0, 0.0], [0.0, 1.0]])
    values = np.zeros((2, 2))
    advantages, _ = generalized_advantage_estimates(rewards, values, values, np.zeros((2, 2)), np.zeros((2, 2)), 1.0, 1.0)
    np.testing.assert_allclose(advantages, [[1.0, 1.0], [0.0, 1.0]])


def test_clipped_surrogate_clips_only_in_the_helpful_direction():
    old = np.log([0.5, 0.5, 0.5, 0.5])
    new = np.log([0.8, 0.8, 0.2, 0.2])  # ratios 1.6, 1.6, 0.4, 0.4
    advantages = np.array([1.0, -1.0, 1.0, -1.0])
    loss = float(clipped_surrogate_loss(new, old, advantages, 0.2))
    # min(1.6·1, 1.2·1) = 1.2; min(−1.6, −1.2) = −1.6; min(0.4, 0.8) = 0.4; min(−0.4, −0.8) = −0.8
    assert loss == pytest.approx(-np.mean([1.2, -1.6, 0.4, -0.8]), rel=1e-6)


def test_value_loss_plain_and_clipped():
    assert float(value_loss([1.0, 3.0], [0.0, 1.0])) == pytest.approx(0.5 * (1 + 4) / 2)
    # Clipped: V moves from 0 to 3 but only 0.5 counts: max((3−1)², (0.5−1)²) = 4.
    assert float(value_loss([3.0], [1.0], old_values=[0.0], clip=0.5)) == pytest.approx(0.5 * 4)
    assert float(value_loss([0.2], [1.0], old_values=[0.0], clip=0.5)) == pytest.approx(0.5 * 0.8**2)


def test_approximate_kl_and_clip_fraction():
    old = np.log([0.5, 0.5])
    assert float(approximate_kl(old, old)) == pytest.approx(0.0, abs=1e-7)
    new = np.log([0.75, 0.5])
    assert float(approximate_kl(new, old)) == pytest.approx(((1.5 - 1) - np.log(1.5)) / 2, rel=1e-5)
    assert float(clip_fraction(new, old, 0.2)) == pytest.approx(0.5)
