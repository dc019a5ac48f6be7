"""Exercise on distributions (tutorial 04): the log-probability of a diagonal Gaussian policy."""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_gaussian_log_probability"]

GAUSSIAN_CASES = [
    ("one action dimension, the action at the mean, σ = 1",
     dict(actions=[[0.0]], mean=[[0.0]], log_std=[[0.0]]),
     "At the mean with σ = 1 the density is 1/√(2π): log π = −½ log 2π ≈ −0.919. Did you keep the constant?"),
    ("one dimension, off the mean, σ = e^0.5",
     dict(actions=[[1.5]], mean=[[0.5]], log_std=[[0.5]]),
     "z = (a − μ) / σ with σ = exp(log_std): log_std is the *log* of σ. Each dimension adds −½ (z² + 2 log σ + log 2π)."),
    ("two action dimensions: sum over dimensions",
     dict(actions=[[0.2, -1.0]], mean=[[0.0, 0.5]], log_std=[[-0.5, 0.3]]),
     "The dimensions are independent, so their log-densities add up: sum over the last axis, giving shape (B,)."),
    ("a batch of three rows",
     dict(actions=[[0.2, -1.0], [1.0, 1.0], [-2.0, 0.0]], mean=[[0.0, 0.5], [0.9, 1.2], [0.0, 0.0]],
          log_std=[[-0.5, 0.3], [-1.0, -1.0], [0.0, 0.7]]),
     "One log-probability per row: the result has shape (batch,)."),
    ("three dimensions, a narrow one (σ = e^−2), one row",
     dict(actions=[[0.1, 2.0, -0.3]], mean=[[0.0, 1.0, 0.0]], log_std=[[-2.0, 0.0, 1.0]]),
     "A narrow Gaussian (log_std < 0) has a density above 1 near its mean: its log can be positive."),
]


def _gaussian_mistakes(actions, mean, log_std):
    log_two_pi = np.log(2 * np.pi)
    with np.errstate(all="ignore"):
        z = (actions - mean) / np.exp(log_std)
        return [
            (-0.5 * np.sum(z**2 + 2 * log_std, axis=-1), "The constant log 2π is missing: each dimension adds −½ log 2π."),
            (-0.5 * np.sum(z**2 + log_two_pi, axis=-1), "The 2 log σ term is missing: a wider Gaussian spreads its density thinner."),
            (-0.5 * np.sum(((actions - mean) / log_std) ** 2 + 2 * log_std + log_two_pi, axis=-1),
             "log_std is the *log* of σ: divide by σ = exp(log_std), not by log_std."),
            (-0.5 * (z**2 + 2 * log_std + log_two_pi), "Sum over the last axis (the action dimensions), giving shape (batch,)."),
            (-0.5 * np.sum(z**2 + log_std + log_two_pi, axis=-1), "log σ² = 2 log σ: the term is 2 · log_std."),
            (-0.5 * np.sum(((actions - mean) / np.exp(2 * log_std)) ** 2 + 2 * log_std + log_two_pi, axis=-1),
             "z = (a − μ) / σ: divide by σ = exp(log_std), not by the variance σ² = exp(2 · log_std)."),
            (-0.5 * np.sum(z**2 + 2 * log_std, axis=-1) - 0.5 * log_two_pi,
             "The constant −½ log 2π comes once *per action dimension*: with d dimensions it adds up to −(d/2) log 2π."),
            (-0.5 * np.mean(z**2 + 2 * log_std + log_two_pi, axis=-1),
             "The log-densities of the dimensions add up: sum over the last axis, not mean."),
            (-0.5 * np.sum(z**2 + 2 * log_std + log_two_pi),
             "One log-probability per row: sum over the last axis only (axis=-1), giving shape (batch,)."),
            (np.sum(z**2 + 2 * log_std + log_two_pi, axis=-1) / 2,
             "Mind the sign: log π = −½ Σ [...], a density below 1 has a negative log."),
        ]


def check_gaussian_log_probability(learner_function) -> bool:
    """Check ``learner_function(actions, mean, log_std) -> log π(a)`` of shape ``(B,)`` for arrays
    of shape ``(B, d)``: log π(a) = −½ Σ_i [((a_i − μ_i) / σ_i)² + 2 log σ_i + log 2π]."""
    import gymnasium

    from dexterity_nb.common.policies import Gaussian

    checker = Checker("Gaussian log-probability", forbidden=[Gaussian.log_probability])
    for name, raw, hint in GAUSSIAN_CASES:
        inputs = {key: np.array(value, dtype=np.float64) for key, value in raw.items()}
        dimensions = inputs["actions"].shape[1]
        reference = Gaussian(gymnasium.spaces.Box(-np.inf, np.inf, (dimensions,), np.float32))
        expected = reference.log_probability(*inputs.values())
        ok, got = checker.call(name, learner_function, inputs, hint)
        if not ok:
            return False
        if not checker.compare(name, inputs, expected, got, hint, mistakes=_gaussian_mistakes(**inputs)):
            return False
    return checker.passed("It matches the Gaussian policy's log_probability, which the agent trains with.")
