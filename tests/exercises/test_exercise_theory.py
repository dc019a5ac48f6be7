"""The PPO-loss checker (tutorial 00) accepts right answers however they are written and names the
typical mistakes."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent import objectives
from dexterity_nb.exercises import check_ppo_loss
from dexterity_nb.exercises.theory import PPO_LOSS_CASES


# -- right answers, written in different ways -----------------------------------------------------
def with_numpy(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
    normalised = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = np.exp(log_probability - old_log_probability)
    policy = -np.mean(np.minimum(ratio * normalised, np.clip(ratio, 1 - clip, 1 + clip) * normalised))
    return policy + c_value * 0.5 * np.mean((values - returns) ** 2) - c_entropy * np.mean(entropy)


def with_tensorflow(new_log_pi, old_log_pi, adv, v, targets, h, epsilon, value_weight, entropy_weight):
    adv = tf.constant(adv)
    adv = (adv - tf.reduce_mean(adv)) / (tf.math.reduce_std(adv) + 1e-8)
    ratio = tf.exp(tf.constant(new_log_pi) - old_log_pi)
    surrogate = tf.minimum(ratio * adv, tf.clip_by_value(ratio, 1 - epsilon, 1 + epsilon) * adv)
    value_term = 0.5 * tf.reduce_mean(tf.square(tf.constant(v) - targets))
    return -tf.reduce_mean(surrogate) + value_weight * value_term - entropy_weight * tf.reduce_mean(h)


def with_loops(a, b, c, d, e, f, g, k, m):  # plain Python floats, one sample at a time
    n = len(c)
    mean = sum(float(x) for x in c) / n
    std = math.sqrt(sum((float(x) - mean) ** 2 for x in c) / n)
    total_policy = total_value = total_entropy = 0.0
    for i in range(n):
        advantage = (float(c[i]) - mean) / (std + 1e-8)
        ratio = math.exp(float(a[i]) - float(b[i]))
        total_policy += min(ratio * advantage, max(1 - g, min(1 + g, ratio)) * advantage)
        total_value += 0.5 * (float(d[i]) - float(e[i])) ** 2
        total_entropy += float(f[i])
    return -total_policy / n + k * total_value / n - m * total_entropy / n


def with_epsilon_under_the_root(log_probability, old_log_probability, advantages, values, returns, entropy, clip,
                                c_value, c_entropy):  # √(σ² + ε) instead of σ + ε: the same to 1e-4 here
    normalised = (advantages - advantages.mean()) / np.sqrt(advantages.var() + 1e-8)
    ratio = np.exp(log_probability - old_log_probability)
    objective = np.mean(np.minimum(ratio * normalised, np.clip(ratio, 1 - clip, 1 + clip) * normalised))
    return np.array([-(objective - c_value * 0.5 * np.mean((values - returns) ** 2) + c_entropy * np.mean(entropy))])


@pytest.mark.parametrize("right", [with_numpy, with_tensorflow, with_loops, with_epsilon_under_the_root])
def test_accepts_right_answers_written_differently(right, capsys):
    assert check_ppo_loss(right) is True
    assert f"✓ the PPO loss of one minibatch: all {len(PPO_LOSS_CASES)} cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("index, by_hand", [
    (0, 0.0),  # ρ = 1: −mean(Â) = 0
    (2, 0.5 * 0.5 * (1 + 1 + 4) / 3),  # c_value · ½ mean (V − R)², errors −1, 1, −2
    (3, 0.5 * 0.5 * (0.25 + 0 + 1 + 1) / 4 - 0.1 * (0.69 + 0.5 + 0.3 + 0.6) / 4),  # value term − c_entropy · mean H
    (5, 0.5 * 0.5 * (0.25 + 0.25 + 2.25) / 3 - 0.01 * (0.4 + 0.7 + 0.5) / 3),  # Â = 0: no policy term
])
def test_the_reference_agrees_with_values_worked_out_by_hand(index, by_hand):
    from dexterity_nb.exercises.theory import _reference

    assert _reference(**PPO_LOSS_CASES[index][1]) == pytest.approx(by_hand, abs=1e-6)


# -- typical mistakes, each named by its hint ------------------------------------------------------
def _loss(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy,
          normalise=lambda a: (a - a.mean()) / (a.std() + 1e-8), surrogate=None, half=0.5, value_sign=1.0,
          entropy_sign=-1.0, reduce=np.mean):
    normalised = normalise(np.asarray(advantages, dtype=np.float64))
    ratio = np.exp(log_probability - old_log_probability)
    if surrogate is None:
        terms = np.minimum(ratio * normalised, np.clip(ratio, 1 - clip, 1 + clip) * normalised)
    else:
        terms = surrogate(ratio, normalised, clip)
    return (-reduce(terms) + value_sign * c_value * half * reduce((values - returns) ** 2)
            + entropy_sign * c_entropy * reduce(entropy))


def _mistake(**changes):
    return lambda *arguments: _loss(*arguments, **changes)


MISTAKES = {
    "raw advantages": (_mistake(normalise=lambda a: a), "You use the raw advantages"),
    "centred only": (_mistake(normalise=lambda a: a - a.mean()), "do not divide by their standard deviation"),
    "torch's std (ddof=1)": (_mistake(normalise=lambda a: (a - a.mean()) / (a.std(ddof=1) + 1e-8)),
                             "sample standard deviation (ddof = 1"),
    "no epsilon": (_mistake(normalise=lambda a: (a - a.mean()) / a.std()), "Divide by (std A + 1e-8)"),
    "no clipping": (_mistake(surrogate=lambda ratio, a, clip: ratio * a), "There is no clipping"),
    "maximum": (_mistake(surrogate=lambda ratio, a, clip: np.maximum(ratio * a, np.clip(ratio, 1 - clip, 1 + clip) * a)),
                "PPO takes the minimum"),
    "value loss without ½": (_mistake(half=1.0), "you left out the ½"),
    "value loss subtracted": (_mistake(value_sign=-1.0), "The value loss is added"),
    "entropy added": (_mistake(entropy_sign=1.0), "The entropy bonus is subtracted"),
    "sums": (_mistake(reduce=np.sum), "mean, not sum"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_rejects_a_typical_mistake_with_its_hint(name, capsys):
    wrong, words = MISTAKES[name]
    assert check_ppo_loss(wrong) is False
    output = capsys.readouterr().out
    assert "✗" in output and words in output, output


def test_names_the_paper_objective_whose_sign_is_flipped(capsys):
    assert check_ppo_loss(lambda *arguments: -with_numpy(*arguments)) is False
    assert "the paper's objective" in capsys.readouterr().out


def test_names_swapped_coefficients(capsys):
    def swapped(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_entropy, c_value):
        return with_numpy(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value,
                          c_entropy)

    assert check_ppo_loss(swapped) is False
    assert "the other way round" in capsys.readouterr().out


def test_asks_for_one_number_not_one_per_sample(capsys):
    def per_sample(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        return np.full(len(advantages), with_numpy(log_probability, old_log_probability, advantages, values, returns,
                                                   entropy, clip, c_value, c_entropy))

    assert check_ppo_loss(per_sample) is False
    assert "Expected one number, got an array of shape (4,)" in capsys.readouterr().out


def test_catches_advantages_normalised_in_place(capsys):
    def in_place(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        advantages -= advantages.mean()
        advantages /= advantages.std() + 1e-8
        ratio = np.exp(log_probability - old_log_probability)
        policy = -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))
        return policy + c_value * 0.5 * np.mean((values - returns) ** 2) - c_entropy * np.mean(entropy)

    assert check_ppo_loss(in_place) is False
    output = capsys.readouterr().out
    assert "`advantages`, in place" in output


def test_refuses_the_package_own_functions_however_imported(capsys):
    from dexterity_nb.agent.objectives import normalize_advantages as normalise

    def composed(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        ratio = np.exp(log_probability - old_log_probability)
        normalised = np.asarray(normalise(advantages))
        policy = -np.mean(np.minimum(ratio * normalised, np.clip(ratio, 1 - clip, 1 + clip) * normalised))
        return policy + c_value * objectives.value_loss(values, returns) - c_entropy * np.mean(entropy)

    assert check_ppo_loss(composed) is False
    output = capsys.readouterr().out
    assert "runs `dexterity_nb.agent.objectives.normalize_advantages`" in output


def test_a_crash_keeps_the_case_hint(capsys):
    def crashing(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        return np.mean(advantages) / undefined_name  # noqa: F821

    assert check_ppo_loss(crashing) is False
    output = capsys.readouterr().out
    assert "NameError" in output and "normalised advantages have mean 0" in output


def test_an_unfinished_exercise_is_told_to_return(capsys):
    def unfinished(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        ...

    assert check_ppo_loss(unfinished) is False
    assert "returned None" in capsys.readouterr().out


def test_the_student_release_says_what_to_replace(capsys):
    def released(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
        raise NotImplementedError()

    assert check_ppo_loss(released) is False
    assert "Replace `raise NotImplementedError()`" in capsys.readouterr().out


def test_refuses_the_value_loss_of_the_package(capsys):
    def with_package_value_loss(log_probability, old_log_probability, advantages, values, returns, entropy, clip,
                                c_value, c_entropy):
        loss = with_numpy(log_probability, old_log_probability, advantages, values, returns, entropy, clip, 0.0,
                          c_entropy)
        return loss + c_value * float(objectives.value_loss(values, returns))

    assert check_ppo_loss(with_package_value_loss) is False
    assert "runs `dexterity_nb.agent.objectives.value_loss`" in capsys.readouterr().out
