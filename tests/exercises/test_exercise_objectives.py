"""The PPO-maths checkers accept the solutions and reject typical mistakes, naming the mistake."""

import numpy as np
import pytest
from solutions.advantages import gae
from solutions.getting_started import clipped_surrogate_loss

from dexterity_nb.exercises import check_clipped_surrogate, check_gae


def test_surrogate_accepts_solution(capsys):
    assert check_clipped_surrogate(clipped_surrogate_loss) is True
    assert "✓" in capsys.readouterr().out


def _ratio(log_probability, old_log_probability):
    return np.exp(np.asarray(log_probability) - old_log_probability)


def surrogate_without_clipping(log_probability, old_log_probability, advantages, clip):
    return -np.mean(_ratio(log_probability, old_log_probability) * advantages)


def surrogate_with_max(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.mean(np.maximum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_objective_not_loss(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_clipping_advantages(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.mean(np.minimum(ratio * advantages, ratio * np.clip(advantages, 1 - clip, 1 + clip)))


def surrogate_sum(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.sum(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def surrogate_per_sample(log_probability, old_log_probability, advantages, clip):
    ratio = _ratio(log_probability, old_log_probability)
    return -np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages)


def surrogate_unfinished(log_probability, old_log_probability, advantages, clip):
    ...


@pytest.mark.parametrize("wrong, words", [
    (surrogate_without_clipping, "no clipping yet"),
    (surrogate_with_max, "maximum of the two terms"),
    (surrogate_objective_not_loss, "sign is flipped"),
    (surrogate_clipping_advantages, "Clip the ratio ρ, not the advantage A"),
    (surrogate_sum, "mean, not sum"),
    (surrogate_per_sample, "scalar"),
    (surrogate_unfinished, "returned None"),
])
def test_surrogate_rejects_typical_mistakes(wrong, words, capsys):
    assert check_clipped_surrogate(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output


def test_gae_accepts_solution(capsys):
    assert check_gae(gae) is True
    assert "✓" in capsys.readouterr().out


def test_gae_accepts_tuple_with_returns():
    assert check_gae(lambda **kw: (gae(**kw), gae(**kw) + kw["values"])) is True


def gae_ignoring_terminated(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae(rewards, values, next_values, np.zeros_like(terminated), episode_ends, discount, lam)


def gae_not_reset_at_truncation(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae(rewards, values, next_values, terminated, terminated, discount, lam)


def gae_truncation_as_termination(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae(rewards, values, next_values, episode_ends, episode_ends, discount, lam)


def gae_never_reset(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae(rewards, values, next_values, terminated, np.zeros_like(episode_ends), discount, lam)


def gae_without_lambda(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return gae(rewards, values, next_values, terminated, episode_ends, discount, 1.0)


def gae_forward_in_time(rewards, values, next_values, terminated, episode_ends, discount, lam):
    deltas = rewards + discount * next_values * (1 - terminated) - values
    advantages, running = np.zeros_like(deltas), np.zeros_like(deltas[0])
    for t in range(len(rewards)):
        running = deltas[t] + discount * lam * (1 - episode_ends[t]) * running
        advantages[t] = running
    return advantages


def gae_only_first_worker(rewards, values, next_values, terminated, episode_ends, discount, lam):
    advantages = gae(rewards, values, next_values, terminated, episode_ends, discount, lam)
    return advantages[:, 0] if advantages.ndim == 2 else advantages


@pytest.mark.parametrize("wrong, words", [
    (gae_ignoring_terminated, "You ignore `terminated`"),
    (gae_not_reset_at_truncation, "At a truncation"),
    (gae_truncation_as_termination, "like a termination"),
    (gae_never_reset, "across episode ends"),
    (gae_without_lambda, "λ = 0"),
    (gae_forward_in_time, "backwards"),
    (gae_only_first_worker, "shape"),
])
def test_gae_rejects_typical_mistakes(wrong, words, capsys):
    assert check_gae(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output


def test_gae_reports_a_crash_instead_of_raising(capsys):
    def crashing(**kwargs):
        raise IndexError("index 3 is out of bounds")

    assert check_gae(crashing) is False
    assert "IndexError" in capsys.readouterr().out


def surrogate_log_ratio(log_probability, old_log_probability, advantages, clip):
    log_ratio = np.asarray(log_probability) - old_log_probability
    return -np.mean(np.minimum(log_ratio * advantages, np.clip(log_ratio, 1 - clip, 1 + clip) * advantages))


def test_surrogate_names_the_missing_exponential(capsys):
    assert check_clipped_surrogate(surrogate_log_ratio) is False
    assert "exp(log π_θ − log π_old)" in capsys.readouterr().out
