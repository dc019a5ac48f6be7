"""Tutorial 01: the clipped surrogate loss."""

import numpy as np


def clipped_surrogate_loss(log_probability, old_log_probability, advantages, clip):
    """−mean(min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A)) with ρ = π_θ / π_old."""
    ratio = np.exp(np.asarray(log_probability) - np.asarray(old_log_probability))
    unclipped = ratio * advantages
    clipped = np.clip(ratio, 1 - clip, 1 + clip) * advantages
    return -np.mean(np.minimum(unclipped, clipped))
