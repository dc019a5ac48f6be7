"""The PPO maths, as small pure functions.

Symbols: γ ``discount``, λ ``lam``, ε ``clip``; r_t the reward, V the value estimate,
π_θ the current policy, π_old the policy that gathered the data.

``generalized_advantage_estimates`` works on NumPy (it runs once per cycle over the gathered
data); the losses work on TensorFlow tensors (they run inside the compiled update) and accept
NumPy arrays too, which is how the tests and exercises call them.
"""

from __future__ import annotations

import numpy as np
from dexterity_nb.common.quiet_import import tensorflow as tf  # TensorFlow without its start-up log lines

__all__ = [
    "generalized_advantage_estimates",
    "masked_mean",
    "behaviour_weights",
    "normalize_advantages",
    "clipped_surrogate_loss",
    "clip_by_global_norm",
    "value_loss",
    "approximate_kl",
    "clip_fraction",
    "explained_variance",
    "explained_variance_from_variances",
]


def generalized_advantage_estimates(rewards, values, next_values, terminated, episode_ends, discount, lam):
    """GAE(λ) advantages for trajectories laid out in time, shape ``(T, ...)`` (any trailing dims).

    δ_t = r_t + γ V(s_{t+1}) (1 − terminated_t) − V(s_t)
    A_t = δ_t + γ λ (1 − end_t) A_{t+1},   A_T = 0

    Args:
        rewards: r_t.
        values: V(s_t).
        next_values: V(s_{t+1}), the value of the state the step led to. When an episode ended at
            t, s_{t+1} is its final observation (not the first of the next episode).
        terminated: 1 where the episode reached a terminal state at t: the return stops there,
            so V(s_{t+1}) counts for nothing.
        episode_ends: 1 where the episode ended at t for any reason (terminated, or truncated by a
            time limit). A truncated episode still bootstraps from V(s_{t+1}) in δ_t, because the
            task would have gone on; but A_{t+1} belongs to another episode and is not added.
            The last step of a gathering horizon is *not* an end: it bootstraps and A_T = 0.
        discount: γ ∈ [0, 1].
        lam: λ ∈ [0, 1]. λ = 0 gives the one-step TD error A_t = δ_t; λ = 1 gives the
            Monte-Carlo return minus V(s_t) (with bootstrapping at truncation and horizon).

    Returns:
        ``(advantages, returns)`` with returns = advantages + values, the value targets.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    deltas = rewards + discount * np.asarray(next_values, dtype=np.float64) * (1.0 - np.asarray(terminated, dtype=np.float64)) - values
    continues = discount * lam * (1.0 - np.asarray(episode_ends, dtype=np.float64))
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        running = deltas[t] + continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


def masked_mean(values, mask=None):
    """mean_t x_t, or Σ_t m_t x_t / Σ_t m_t with a ``mask`` m of 1 (counts) and 0 (does not): the
    recurrent update's sequences are padded to a fixed length, and padding steps must not count."""
    if mask is None:
        return tf.reduce_mean(values)
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def normalize_advantages(advantages, epsilon=1e-8, moments=None, mask=None):
    """Â = (A − μ) / (σ + ε), with μ and σ² the mean and (population) variance of the minibatch.

    Keeps the step size independent of the reward scale. ``moments``: ``(μ, σ²)`` computed
    elsewhere, for a minibatch spread over MPI processes (each holds only its share of ``A``, but
    all must normalise with the whole minibatch's moments to compute what one process would);
    ``None`` computes them from ``advantages`` (over the steps where ``mask`` is 1, if given).
    Shapes: ``(B,)`` in, ``(B,)`` out.
    """
    advantages = tf.convert_to_tensor(advantages, dtype=tf.float32)
    if moments is None and mask is not None:
        mean = masked_mean(advantages, mask)
        variance = masked_mean(tf.square(advantages - mean), mask)
    elif moments is None:
        mean, variance = tf.nn.moments(advantages, axes=[0])
    else:
        mean, variance = (tf.cast(moment, tf.float32) for moment in moments)
    return (advantages - mean) / (tf.sqrt(variance) + epsilon)


def behaviour_weights(old_log_probability, behaviour_log_probability, bound=1.0):
    """w_t = min(π_old(a_t|s_t) / μ(a_t|s_t), c̄): the weight of a sample gathered by a behaviour policy μ.

    A gatherer that deviates from the policy (ε-greedy, a teacher, safety overrides) chooses a_t
    with probability μ(a_t|s_t), not π_old(a_t|s_t); weighting each sample by π_old/μ makes the
    expectation over μ's samples one over π_old's. Truncating at c̄ (as V-trace's ρ̄, Espeholt et
    al., 2018) keeps a rare action that π_old likes from dominating the minibatch. With μ = π_old
    (the default gatherer) every w_t is exactly 1. NumPy, shapes ``(...)`` in and out (float32).
    """
    log_ratio = np.asarray(old_log_probability, dtype=np.float64) - np.asarray(behaviour_log_probability, dtype=np.float64)
    return np.minimum(np.exp(log_ratio), bound).astype(np.float32)


def clipped_surrogate_loss(log_probability, old_log_probability, advantages, clip, mask=None, behaviour_weights=None):
    """L^CLIP = −mean_t w_t · min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t),  ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t).

    Minimising it raises the probability of advantageous actions, but gains nothing once ρ_t
    leaves [1 − ε, 1 + ε] in the helpful direction: the new policy stays near the one that
    gathered the data. ``behaviour_weights`` w_t (default 1) come from :func:`behaviour_weights`
    when a gatherer acted by another policy μ: the trust region stays centred on π_old, and the
    sample is weighted by π_old/μ (the *decoupled* objective of Hilton, Cobbe and Schulman, 2021,
    "Batch size-invariance for policy optimization"). Shapes: all ``(B,)``; returns a scalar.
    """
    log_probability = tf.convert_to_tensor(log_probability, dtype=tf.float32)
    ratio = tf.exp(log_probability - tf.convert_to_tensor(old_log_probability, dtype=tf.float32))
    advantages = tf.convert_to_tensor(advantages, dtype=tf.float32)
    unclipped = ratio * advantages
    clipped = tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip) * advantages
    surrogate = tf.minimum(unclipped, clipped)
    if behaviour_weights is not None:
        surrogate = surrogate * tf.convert_to_tensor(behaviour_weights, dtype=tf.float32)
    return -masked_mean(surrogate, mask)


def value_loss(values, returns, old_values=None, clip=None, mask=None):
    """L^V = ½ mean_t (V(s_t) − R_t)².

    With ``clip`` (off by default), the value may move at most ``clip`` from ``old_values`` before
    the loss stops rewarding it: ½ mean_t max((V − R)², (V_old + clip(V − V_old, −c, c) − R)²).
    Shapes: ``(B,)``; returns a scalar.
    """
    values = tf.convert_to_tensor(values, dtype=tf.float32)
    returns = tf.convert_to_tensor(returns, dtype=tf.float32)
    squared_error = tf.square(values - returns)
    if clip is not None:
        old_values = tf.convert_to_tensor(old_values, dtype=tf.float32)
        clipped_values = old_values + tf.clip_by_value(values - old_values, -clip, clip)
        squared_error = tf.maximum(squared_error, tf.square(clipped_values - returns))
    return 0.5 * masked_mean(squared_error, mask)


def approximate_kl(log_probability, old_log_probability, mask=None):
    """KL(π_old ‖ π_θ) ≈ mean_t [(ρ_t − 1) − log ρ_t]: never negative, low variance (Schulman, 2020)."""
    log_ratio = tf.convert_to_tensor(log_probability, dtype=tf.float32) - tf.convert_to_tensor(old_log_probability, dtype=tf.float32)
    return masked_mean(tf.exp(log_ratio) - 1.0 - log_ratio, mask)


def clip_fraction(log_probability, old_log_probability, clip, mask=None):
    """The share of samples whose ratio ρ_t lies outside [1 − ε, 1 + ε]: how often clipping acts."""
    ratio = tf.exp(tf.convert_to_tensor(log_probability, dtype=tf.float32) - tf.convert_to_tensor(old_log_probability, dtype=tf.float32))
    return masked_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32), mask)


def explained_variance(values, returns):
    """EV = 1 − Var[R − V] / Var[R]: how much of the returns' spread the value estimates explain.

    ``values`` V(s_t) are the estimates made before the update (the ones GAE used), ``returns``
    R_t the value targets (GAE's ``advantages + values``). Reading it:

    - 1: V predicts every return exactly;
    - 0: V does no better than predicting the mean return everywhere;
    - < 0: V does worse than that (typical at the start, or when the value network diverges);
    - NaN: Var[R] = 0 (all returns equal), where the ratio means nothing.

    The variances are population variances (divide by n, like ``np.var``); since Var[R] is in
    both places, dividing by n − 1 instead would give the same number. A Var[R] within float
    rounding of 0 (≤ 10⁻²⁴ · mean R², as for a constant 0.1 stored in binary) counts as 0.
    Shapes: any, the same for both (flattened); returns a Python float. NumPy, not TensorFlow: it
    runs once per cycle, outside the compiled update.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    returns = np.asarray(returns, dtype=np.float64).ravel()
    if values.shape != returns.shape:
        raise ValueError(f"`values` and `returns` must have the same number of samples; got {values.size} and {returns.size}.")
    return explained_variance_from_variances(np.var(returns - values), np.var(returns), np.mean(returns**2))


def explained_variance_from_variances(error_variance, return_variance, mean_squared_return):
    """EV = 1 − Var[R − V] / Var[R] from the two variances (pooled over MPI processes, say).

    ``mean_squared_return`` (mean R²) sets the scale below which Var[R] is rounding noise: NaN
    when Var[R] ≤ 10⁻²⁴ · mean R² (see :func:`explained_variance`).
    """
    if not return_variance > 1e-24 * mean_squared_return:
        return float("nan")
    return float(1.0 - error_variance / return_variance)


def clip_by_global_norm(gradients, max_norm, norm=None):
    """g ← g · min(1, c / ‖g‖), with ‖g‖ the global norm of all gradients together; c = 0: no clipping.

    Written out rather than ``tf.clip_by_global_norm``, whose scale c · min(1/‖g‖, 1/c) flushes to
    zero for c above ~8.5e37 (1/c is then subnormal in float32), so a huge limit, or the float
    that once stood for "no limit", silently zeroed every gradient. Here c / ‖g‖ only grows with c,
    and min(1, ·) caps it at 1. ``norm``: ‖g‖ if already computed. Returns the list of gradients.
    """
    max_norm = tf.convert_to_tensor(max_norm, dtype=tf.float32)
    norm = tf.linalg.global_norm(gradients) if norm is None else tf.convert_to_tensor(norm, dtype=tf.float32)
    scale = tf.where(max_norm > 0, tf.minimum(1.0, max_norm / tf.maximum(norm, 1e-30)), 1.0)
    return [gradient * tf.cast(scale, gradient.dtype) for gradient in gradients]
