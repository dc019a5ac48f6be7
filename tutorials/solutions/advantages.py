"""Tutorial 06: generalised advantage estimation."""

import numpy as np


def gae(rewards, values, next_values, terminated, episode_ends, discount, lam):
    """Backwards through time: A_t = δ_t + γλ(1 − end_t)·A_{t+1}."""
    deltas = rewards + discount * next_values * (1 - terminated) - values
    advantages = np.zeros_like(deltas, dtype=float)
    following = np.zeros_like(deltas[0], dtype=float)
    for t in reversed(range(len(rewards))):
        following = deltas[t] + discount * lam * (1 - episode_ends[t]) * following
        advantages[t] = following
    return advantages
