"""Exercises on the PPO maths: the clipped surrogate (tutorial 01) and GAE (tutorial 06).

References come from :mod:`dexterity_nb.agent.objectives`, the functions the agent trains with;
an answer that runs those functions itself is refused (see :mod:`dexterity_nb.exercises.feedback`).
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_clipped_surrogate", "check_gae", "SURROGATE_CASES", "GAE_CASES"]

# (name, inputs, hint if this case fails) — each case is built so one typical mistake changes it.
SURROGATE_CASES = [
    ("ratio inside [1 − ε, 1 + ε]: nothing is clipped",
     dict(log_probability=[-0.65, -1.2], old_log_probability=[-0.7, -1.1], advantages=[1.0, -0.5], clip=0.2),
     "Inside the clip range the loss is −mean(ρ · A) with ρ = exp(log π − log π_old). We *minimise* the loss, "
     "so it is the negative of the surrogate objective."),
    ("ratio above 1 + ε with a positive advantage",
     dict(log_probability=[-0.2], old_log_probability=[-0.9], advantages=[2.0], clip=0.2),
     "ρ = exp(0.7) ≈ 2.01 is far above 1 + ε = 1.2. With A > 0 the objective must stop growing at "
     "(1 + ε) · A: take min(ρ · A, clip(ρ, 1 − ε, 1 + ε) · A). Clip the ratio, not the advantage."),
    ("ratio below 1 − ε with a negative advantage",
     dict(log_probability=[-2.0], old_log_probability=[-0.5], advantages=[-1.5], clip=0.2),
     "ρ = exp(−1.5) ≈ 0.22. With A < 0 the objective stops improving at (1 − ε) · A: min(ρA, clip(ρ)A) "
     "picks the clipped term here."),
    ("ratio above 1 + ε with a negative advantage: no clipping, the pessimistic term wins",
     dict(log_probability=[-0.2], old_log_probability=[-0.9], advantages=[-1.0], clip=0.2),
     "Here ρ · A ≈ −2.01 is *worse* than clip(ρ) · A = −1.2, and PPO keeps the worse one: use the minimum "
     "of the two terms, not the maximum. Otherwise a bad move that went too far would go unpunished."),
    ("a batch mixing every situation, ε = 0.1",
     dict(log_probability=[-0.1, -2.3, -0.4, -1.0, -0.5], old_log_probability=[-0.5, -1.6, -0.45, -0.2, -0.5],
          advantages=[0.8, -1.2, 0.3, 2.0, -0.7], clip=0.1),
     "Average over the batch (mean, not sum) and check the clip range uses the given ε."),
]


def _surrogate_mistakes(log_probability, old_log_probability, advantages, clip):
    log_ratio = np.asarray(log_probability, dtype=np.float64) - np.asarray(old_log_probability, dtype=np.float64)
    ratio = np.exp(log_ratio)
    advantages = np.asarray(advantages, dtype=np.float64)
    clipped = np.clip(ratio, 1 - clip, 1 + clip) * advantages
    return [
        (-np.mean(ratio * advantages), "There is no clipping yet: once ρ leaves [1 − ε, 1 + ε] in the helpful direction, "
                                       "the objective must stop growing. Use min(ρ · A, clip(ρ, 1 − ε, 1 + ε) · A)."),
        (-np.mean(np.maximum(ratio * advantages, clipped)), "You take the maximum of the two terms; PPO takes the minimum "
                                                            "(the pessimistic bound), so moving too far never pays."),
        (-np.mean(np.minimum(ratio * advantages, ratio * np.clip(advantages, 1 - clip, 1 + clip))),
         "Clip the ratio ρ, not the advantage A."),
        (-np.sum(np.minimum(ratio * advantages, clipped)), "Average over the batch (mean, not sum)."),
        (-np.mean(np.minimum(log_ratio * advantages, np.clip(log_ratio, 1 - clip, 1 + clip) * advantages)),
         "ρ is a ratio of probabilities: ρ = exp(log π_θ − log π_old), not the difference of the log-probabilities."),
        (-np.mean(np.minimum(ratio * advantages, np.clip(ratio * advantages, 1 - clip, 1 + clip))),
         "Clip the ratio ρ, not the product ρ · A: clip(ρ, 1 − ε, 1 + ε) · A."),
        (_clipped(np.asarray(log_probability, dtype=np.float64) / np.asarray(old_log_probability, dtype=np.float64),
                  advantages, clip),
         "ρ = exp(log π_θ − log π_old): dividing the log-probabilities does not give the ratio of the probabilities."),
        (_clipped(1.0 / ratio, advantages, clip),
         "The ratio is upside down: ρ = π_θ / π_old = exp(log_probability − old_log_probability), the current policy on top."),
        (_clipped(ratio, advantages, 0.2),
         f"Use the `clip` argument (here ε = {clip}), not a fixed 0.2."),
    ]


def _clipped(ratio, advantages, clip):
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages))


def check_clipped_surrogate(learner_function) -> bool:
    """Check ``learner_function(log_probability, old_log_probability, advantages, clip) -> loss``.

    The loss is L^CLIP = −mean_t min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t) with
    ρ_t = exp(log π_θ(a_t|s_t) − log π_old(a_t|s_t)); arrays of shape (B,), the result a scalar.
    """
    from dexterity_nb.agent.objectives import clipped_surrogate_loss

    checker = Checker("clipped surrogate loss", forbidden=[clipped_surrogate_loss])
    for name, inputs, hint in SURROGATE_CASES:
        arrays = {key: (np.array(value, dtype=np.float32) if isinstance(value, list) else value) for key, value in inputs.items()}
        expected = float(clipped_surrogate_loss(*arrays.values()))
        ok, got = checker.call(name, learner_function, arrays, hint)
        if not ok:
            return False
        got_array = as_array(got) if got is not None else None
        if got_array is not None and got_array.size == 1:
            got = got_array.reshape(())
            if np.isclose(float(got), -expected, atol=1e-4) and not np.isclose(expected, 0.0, atol=1e-4):
                return checker.fail(name, f"Expected {expected:.4f}, got {float(got):.4f}: the sign is flipped.", arrays,
                                    "Optimisers minimise. Return the *negative* of the clipped objective.")
        elif got_array is not None and got_array.ndim == 1:
            return checker.fail(name, f"Expected one number (a scalar loss), got an array of shape {got_array.shape}.", arrays,
                                "Take the mean over the batch at the end.")
        if not checker.compare(name, arrays, expected, got, hint, mistakes=_surrogate_mistakes(**inputs)):
            return False
    return checker.passed("This is the policy loss the agent minimises in every minibatch.")


def _gae_case(rewards, values, next_values, terminated, episode_ends, discount, lam):
    return dict(
        rewards=np.array(rewards, dtype=np.float64), values=np.array(values, dtype=np.float64),
        next_values=np.array(next_values, dtype=np.float64), terminated=np.array(terminated, dtype=bool),
        episode_ends=np.array(episode_ends, dtype=bool), discount=discount, lam=lam,
    )


GAE_CASES = [
    ("one step that ends the episode (terminated)",
     _gae_case([1.0], [0.5], [2.0], [True], [True], 0.9, 0.95),
     "When the episode terminated at t, nothing follows: δ_t = r_t − V(s_t). V(s_{t+1}) must be multiplied by "
     "(1 − terminated_t)."),
    ("three steps, no episode end, λ = 0: the one-step TD error",
     _gae_case([1.0, 0.0, 2.0], [0.5, 1.0, 0.2], [1.0, 0.2, 0.7], [False] * 3, [False] * 3, 0.9, 0.0),
     "With λ = 0, A_t = δ_t = r_t + γ V(s_{t+1}) − V(s_t) for every t."),
    ("three steps, no episode end, λ = 1: discounted return minus V, bootstrapped at the horizon",
     _gae_case([1.0, 0.0, 2.0], [0.5, 1.0, 0.2], [1.0, 0.2, 0.7], [False] * 3, [False] * 3, 0.9, 1.0),
     "Work backwards: A_t = δ_t + γ λ A_{t+1}, starting from A_T = 0 after the last step. The last step still "
     "bootstraps from V(s_{t+1}) in its δ, because the horizon is not an episode end."),
    ("an episode terminates at step 1, a new one starts at step 2",
     _gae_case([1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 3.0, 2.5], [1.0, 5.0, 2.5, 2.0], [False, True, False, False],
               [False, True, False, False], 0.99, 0.95),
     "At a terminal step, drop γ V(s_{t+1}) from δ_t AND do not add A_{t+1}: it belongs to the next episode."),
    ("an episode is truncated (time limit) at step 1",
     _gae_case([1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 3.0, 2.5], [1.0, 5.0, 2.5, 2.0], [False, False, False, False],
               [False, True, False, False], 0.99, 0.95),
     "A truncated episode would have gone on, so δ_t still bootstraps from V(s_{t+1}) (use `terminated`, not "
     "`episode_ends`, in δ). But A_{t+1} belongs to the next episode: multiply it by (1 − episode_ends_t)."),
    ("two workers side by side, shape (T, workers) = (4, 2), with a termination and a truncation",
     _gae_case([[1.0, 0.5], [0.0, 0.5], [1.0, 0.5], [2.0, 0.5]], [[0.3, 1.0], [0.6, 1.2], [0.1, 0.9], [0.8, 1.1]],
               [[0.6, 1.2], [0.0, 4.0], [0.8, 1.1], [0.4, 1.0]], [[False, False], [True, False], [False, False], [False, False]],
               [[False, False], [True, True], [False, False], [False, False]], 0.98, 0.8),
     "Work on whole rows at a time: each column is one worker. The arrays' first axis is time."),
]


def _gae_mistakes(rewards, values, next_values, terminated, episode_ends, discount, lam):
    from dexterity_nb.agent.objectives import generalized_advantage_estimates as reference

    never = np.zeros_like(terminated)
    return [
        (reference(rewards, values, next_values, never, episode_ends, discount, lam)[0],
         "You ignore `terminated`: after a terminal step nothing follows, so multiply γ V(s_{t+1}) by (1 − terminated_t)."),
        (reference(rewards, values, next_values, terminated, terminated, discount, lam)[0],
         "At a truncation (episode_ends but not terminated) you carry A_{t+1} of the next episode into this one: "
         "multiply it by (1 − episode_ends_t), not by (1 − terminated_t)."),
        (reference(rewards, values, next_values, episode_ends, episode_ends, discount, lam)[0],
         "You treat a truncation like a termination. A truncated episode would have gone on, so δ_t still "
         "bootstraps from V(s_{t+1}): use `terminated` in δ and `episode_ends` only to stop the sum."),
        (reference(rewards, values, next_values, terminated, never, discount, lam)[0],
         "The sum runs across episode ends: multiply A_{t+1} by (1 − episode_ends_t) so each episode stands alone."),
        (reference(rewards, values, next_values, terminated, episode_ends, discount, lam)[1],
         "You return A_t + V(s_t), the value targets (returns); the exercise asks for the advantages A_t."),
        (reference(rewards, values, np.concatenate([values[1:], next_values[-1:]]), terminated, episode_ends, discount,
                   lam)[0],
         "V(s_{t+1}) is next_values[t], not values[t + 1]: after an episode end, values[t + 1] belongs to the first "
         "state of the next episode."),
    ]


def check_gae(learner_function) -> bool:
    """Check ``learner_function(rewards, values, next_values, terminated, episode_ends, discount, lam)``.

    It must return the GAE advantages with the shape of ``rewards`` (or a tuple whose first item
    is the advantages), computed as

        δ_t = r_t + γ V(s_{t+1}) (1 − terminated_t) − V(s_t)
        A_t = δ_t + γ λ (1 − episode_ends_t) A_{t+1},   A_T = 0
    """
    from dexterity_nb.agent.objectives import generalized_advantage_estimates

    checker = Checker("generalised advantage estimation", forbidden=[generalized_advantage_estimates])
    for name, inputs, hint in GAE_CASES:
        expected, _ = generalized_advantage_estimates(*inputs.values())
        ok, got = checker.call(name, learner_function, inputs, hint)
        if not ok:
            return False
        if isinstance(got, tuple):
            got = got[0]
        if not checker.compare(name, inputs, expected, got, hint, mistakes=_gae_mistakes(**inputs)):
            return False
    return checker.passed("The agent computes its advantages exactly like this once per cycle.")
