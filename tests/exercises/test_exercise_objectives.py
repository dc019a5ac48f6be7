"""The PPO-maths checkers (clipped surrogate, GAE) accept right answers however they are written and
reject typical mistakes, naming the mistake."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent import objectives
from dexterity_nb.exercises import check_clipped_surrogate, check_gae


# -- clipped surrogate: right answers ------------------------------------------------------------
def surrogate_numpy(log_probability, old_log_probability, advantages, clip):
    ratio = np.exp(np.asarray(log_probability) - np.asarray(old_log_probability))
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_renamed(new_logp, old_logp, adv, eps):
    ratio = np.exp(new_logp - old_logp)
    return -(np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv)).mean()


def surrogate_tensorflow(log_probability, old_log_probability, advantages, clip):
    ratio = tf.exp(tf.constant(log_probability) - old_log_probability)
    clipped = tf.clip_by_value(ratio, 1 - clip, 1 + clip)
    return -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))


@tf.function
def surrogate_compiled(log_probability, old_log_probability, advantages, clip):
    ratio = tf.exp(log_probability - old_log_probability)
    return -tf.reduce_mean(tf.minimum(ratio * advantages, tf.clip_by_value(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_loops(log_probability, old_log_probability, advantages, clip):
    """Spinning Up's form: min(ρA, g(ε, A)), one sample at a time."""
    total = 0.0
    for new, old, advantage in zip(log_probability, old_log_probability, advantages):
        ratio = np.exp(float(new) - float(old))
        bound = (1 + clip) * advantage if advantage >= 0 else (1 - clip) * advantage
        total += min(ratio * advantage, bound)
    return -total / len(advantages)


def surrogate_in_place_but_on_its_own_copy(log_probability, old_log_probability, advantages, clip):
    log_ratio = np.array(log_probability, dtype=np.float64)
    log_ratio -= old_log_probability  # in place, but on a copy it made itself
    ratio = np.exp(log_ratio)
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


@pytest.mark.parametrize("right", [surrogate_numpy, surrogate_renamed, surrogate_tensorflow, surrogate_compiled, surrogate_loops,
                                   surrogate_in_place_but_on_its_own_copy])
def test_surrogate_accepts_right_answers_written_differently(right, verdict):
    passes, output = verdict(check_clipped_surrogate, right)
    assert passes is True, output
    assert "✓ clipped surrogate loss: all 5 cases pass" in output


# -- clipped surrogate: wrong answers ------------------------------------------------------------
def _ratio(log_probability, old_log_probability):
    return np.exp(np.asarray(log_probability) - old_log_probability)


def surrogate_without_clipping(log_probability, old_log_probability, advantages, clip):
    return -np.mean(_ratio(log_probability, old_log_probability) * advantages)


def surrogate_with_max(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.mean(np.maximum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_objective_not_loss(log_probability, old_log_probability, advantages, clip):
    return -surrogate_numpy(log_probability, old_log_probability, advantages, clip)


def surrogate_clipping_advantages(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.mean(np.minimum(ratio * advantages, ratio * np.clip(advantages, 1 - clip, 1 + clip)))


def surrogate_clipping_the_product(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio * advantages, 1 - clip, 1 + clip)))


def surrogate_sum(log_probability, old_log_probability, advantages, clip):
    return surrogate_numpy(log_probability, old_log_probability, advantages, clip) * len(advantages)


def surrogate_per_sample(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages)


def surrogate_log_ratio(log_probability, old_log_probability, advantages, clip):
    log_ratio = np.asarray(log_probability) - old_log_probability
    return -np.mean(np.minimum(log_ratio * advantages, np.clip(log_ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_dividing_log_probabilities(log_probability, old_log_probability, advantages, clip):
    ratio = np.asarray(log_probability) / old_log_probability
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_upside_down(log_probability, old_log_probability, advantages, clip):
    return surrogate_numpy(old_log_probability, log_probability, advantages, clip)


def surrogate_fixed_clip(log_probability, old_log_probability, advantages, clip):
    return surrogate_numpy(log_probability, old_log_probability, advantages, 0.2)


def surrogate_changing_advantages(log_probability, old_log_probability, advantages, clip):
    """Right number, but ρ · A is stored in the caller's advantages."""
    ratio = _ratio(log_probability, old_log_probability)
    clipped = np.clip(ratio, 1 - clip, 1 + clip) * advantages
    advantages *= ratio
    return -np.mean(np.minimum(advantages, clipped))


def surrogate_unfinished(log_probability, old_log_probability, advantages, clip):
    ...


def surrogate_placeholder(log_probability, old_log_probability, advantages, clip):
    raise NotImplementedError()


def surrogate_of_the_package(new, old, advantages, clip):
    return float(objectives.clipped_surrogate_loss(new, old, advantages, clip))


@pytest.mark.parametrize("wrong, words", [
    (surrogate_without_clipping, "no clipping yet"),
    (surrogate_with_max, "maximum of the two terms"),
    (surrogate_objective_not_loss, "sign is flipped"),
    (surrogate_clipping_advantages, "Clip the ratio ρ, not the advantage A"),
    (surrogate_clipping_the_product, "not the product ρ · A"),
    (surrogate_sum, "mean, not sum"),
    (surrogate_per_sample, "scalar"),
    (surrogate_log_ratio, "exp(log π_θ − log π_old)"),
    (surrogate_dividing_log_probabilities, "dividing the log-probabilities"),
    (surrogate_upside_down, "upside down"),
    (surrogate_fixed_clip, "not a fixed 0.2"),
    (surrogate_changing_advantages, "changed its argument 3, `advantages`, in place"),
    (surrogate_unfinished, "returned None"),
    (surrogate_placeholder, "Replace `raise NotImplementedError()`"),
    (surrogate_of_the_package, "objectives.clipped_surrogate_loss`, the package's own implementation"),
    (objectives.clipped_surrogate_loss, "the package's own implementation"),
    (functools.partial(objectives.clipped_surrogate_loss), "the package's own implementation"),
])
def test_surrogate_rejects_typical_mistakes_with_their_hint(wrong, words, verdict):
    passes, output = verdict(check_clipped_surrogate, wrong)
    assert passes is False
    assert "✗" in output and words in output, output


def test_a_crash_keeps_the_case_hint_and_shows_the_failing_line(verdict):
    def crashing(log_probability, old_log_probability, advantages, clip):
        ratio = np.exp(log_probability - old_log_probability)
        return -np.mean(ratio[5] * advantages)  # the first case has two samples

    passes, output = verdict(check_clipped_surrogate, crashing)
    assert passes is False
    assert "IndexError" in output
    assert "return -np.mean(ratio[5] * advantages)" in output, output
    assert "Inside the clip range the loss is −mean(ρ · A)" in output, output  # the first case's own hint


# -- GAE: right answers --------------------------------------------------------------------------
def gae_loop(rewards, values, next_values, terminated, episode_ends, discount, lam):
    deltas = rewards + discount * next_values * (1 - terminated) - values
    advantages = np.zeros_like(deltas, dtype=float)
    following = np.zeros_like(deltas[0], dtype=float)
    for t in reversed(range(len(rewards))):
        following = deltas[t] + discount * lam * (1 - episode_ends[t]) * following
        advantages[t] = following
    return advantages


def gae_renamed_with_python_lists(r, v, v_next, done, end, gamma, lmbda):
    """Plain Python over rows; returns a list of rows."""
    result, carry = [], None
    for t in range(len(r) - 1, -1, -1):
        delta = np.asarray(r[t]) + gamma * np.asarray(v_next[t]) * (1.0 - np.asarray(done[t], float)) - v[t]
        carry = delta if carry is None else delta + gamma * lmbda * (1.0 - np.asarray(end[t], float)) * carry
        result.insert(0, carry)
    return [np.asarray(row).tolist() for row in result]


def gae_tensorflow(rewards, values, next_values, terminated, episode_ends, discount, lam):
    not_terminated = 1.0 - tf.cast(terminated, tf.float64)
    continues = discount * lam * (1.0 - tf.cast(episode_ends, tf.float64))
    deltas = rewards + discount * next_values * not_terminated - values
    running = tf.zeros_like(deltas[0])
    rows = []
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + continues[t] * running
        rows.append(running)
    return tf.stack(rows[::-1])


def gae_with_returns(rewards, values, next_values, terminated, episode_ends, discount, lam):
    advantages = gae_loop(rewards, values, next_values, terminated, episode_ends, discount, lam)
    return advantages, advantages + values


@pytest.mark.parametrize("right", [gae_loop, gae_renamed_with_python_lists, gae_tensorflow, gae_with_returns])
def test_gae_accepts_right_answers_written_differently(right, verdict):
    passes, output = verdict(check_gae, right)
    assert passes is True, output
    assert "✓ generalised advantage estimation: all 6 cases pass" in output


# -- GAE: wrong answers --------------------------------------------------------------------------
def gae_ignoring_terminated(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, np.zeros_like(terminated), episode_ends, discount, lam)


def gae_not_reset_at_truncation(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, terminated, terminated, discount, lam)


def gae_truncation_as_termination(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, episode_ends, episode_ends, discount, lam)


def gae_never_reset(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, terminated, np.zeros_like(episode_ends), discount, lam)


def gae_without_lambda(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, terminated, episode_ends, discount, 1.0)


def gae_forward_in_time(rewards, values, next_values, terminated, episode_ends, discount, lam):
    deltas = rewards + discount * next_values * (1 - terminated) - values
    advantages, running = np.zeros_like(deltas), np.zeros_like(deltas[0])
    for t in range(len(rewards)):
        running = deltas[t] + discount * lam * (1 - episode_ends[t]) * running
        advantages[t] = running
    return advantages


def gae_only_first_worker(rewards, values, next_values, terminated, episode_ends, discount, lam):
    advantages = gae_loop(rewards, values, next_values, terminated, episode_ends, discount, lam)
    return advantages[:, 0] if advantages.ndim == 2 else advantages


def gae_returning_returns(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae_loop(rewards, values, next_values, terminated, episode_ends, discount, lam) + values


def gae_shifted_values(rewards, values, next_values, terminated, episode_ends, discount, lam):
    following = np.concatenate([values[1:], next_values[-1:]])
    return gae_loop(rewards, values, following, terminated, episode_ends, discount, lam)


def gae_overwriting_rewards(rewards, values, next_values, terminated, episode_ends, discount, lam):
    """Right numbers, but the δ are written into the caller's rewards."""
    deltas = rewards  # not a copy
    deltas += discount * next_values * (1 - terminated) - values
    advantages, following = np.zeros_like(deltas), np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        following = deltas[t] + discount * lam * (1 - episode_ends[t]) * following
        advantages[t] = following
    return advantages


def gae_one_worker_only(rewards, values, next_values, terminated, episode_ends, discount, lam):
    advantages = np.zeros(len(rewards))  # shape (T,): breaks with a worker axis
    following = 0.0
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + discount * next_values[t] * (1 - terminated[t]) - values[t]
        following = delta + discount * lam * (1 - episode_ends[t]) * following
        advantages[t] = following
    return advantages


def gae_of_the_package(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return objectives.generalized_advantage_estimates(rewards, values, next_values, terminated, episode_ends,
                                                      discount, lam)[0]


@pytest.mark.parametrize("wrong, words", [
    (gae_ignoring_terminated, "You ignore `terminated`"),
    (gae_not_reset_at_truncation, "At a truncation"),
    (gae_truncation_as_termination, "like a termination"),
    (gae_never_reset, "across episode ends"),
    (gae_without_lambda, "λ = 0"),
    (gae_forward_in_time, "backwards"),
    (gae_only_first_worker, "shape"),
    (gae_returning_returns, "the value targets (returns)"),
    (gae_shifted_values, "not values[t + 1]"),
    (gae_overwriting_rewards, "changed its argument 1, `rewards`, in place"),
    (gae_one_worker_only, "Work on whole rows at a time"),
    (gae_of_the_package, "generalized_advantage_estimates`, the package's own implementation"),
    (objectives.generalized_advantage_estimates, "the package's own implementation"),
])
def test_gae_rejects_typical_mistakes_with_their_hint(wrong, words, verdict):
    passes, output = verdict(check_gae, wrong)
    assert passes is False
    assert "✗" in output and words in output, output
