"""Tutorial 04: the log-probability of a diagonal Gaussian."""

import numpy as np


def gaussian_log_probability(actions, mean, log_std):
    """−½ Σ_i [((a_i − μ_i)/σ_i)² + 2 log σ_i + log 2π], one value per row."""
    z = (actions - mean) / np.exp(log_std)
    return -0.5 * np.sum(z**2 + 2 * log_std + np.log(2 * np.pi), axis=-1)
