"""Exercises on the PPO maths: the clipped surrogate (tutorial 01), GAE (tutorial 06) and the
explained variance of the value estimates (tutorial 09).

References come from :mod:`dexterity_nb.agent.objectives`, the functions the agent trains with.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_clipped_surrogate", "check_gae", "check_explained_variance", "SURROGATE_CASES", "GAE_CASES",
           "EXPLAINED_VARIANCE_CASES"]

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
    ]


def check_clipped_surrogate(learner_function) -> bool:
    """Check ``learner_function(log_probability, old_log_probability, advantages, clip) -> loss``.

    The loss is L^CLIP = −mean_t min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t) with
    ρ_t = exp(log π_θ(a_t|s_t) − log π_old(a_t|s_t)); arrays of shape (B,), the result a scalar.
    """
    from dexterity_nb.agent.objectives import clipped_surrogate_loss

    checker = Checker("clipped surrogate loss")
    for name, inputs, hint in SURROGATE_CASES:
        arrays = {key: (np.array(value, dtype=np.float32) if isinstance(value, list) else value) for key, value in inputs.items()}
        expected = float(clipped_surrogate_loss(**arrays))
        try:
            got = learner_function(**{key: np.array(value) if isinstance(value, np.ndarray) else value for key, value in arrays.items()})
        except Exception as error:  # noqa: BLE001 — any error is feedback for the learner
            return checker.crashed(name, error, arrays)
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
    ]


def check_gae(learner_function) -> bool:
    """Check ``learner_function(rewards, values, next_values, terminated, episode_ends, discount, lam)``.

    It must return the GAE advantages with the shape of ``rewards`` (or a tuple whose first item
    is the advantages), computed as

        δ_t = r_t + γ V(s_{t+1}) (1 − terminated_t) − V(s_t)
        A_t = δ_t + γ λ (1 − episode_ends_t) A_{t+1},   A_T = 0
    """
    from dexterity_nb.agent.objectives import generalized_advantage_estimates

    checker = Checker("generalised advantage estimation")
    for name, inputs, hint in GAE_CASES:
        expected, _ = generalized_advantage_estimates(**inputs)
        try:
            got = learner_function(**{key: value.copy() if isinstance(value, np.ndarray) else value for key, value in inputs.items()})
        except Exception as error:  # noqa: BLE001
            return checker.crashed(name, error, inputs)
        if isinstance(got, tuple):
            got = got[0]
        if not checker.compare(name, inputs, expected, got, hint, mistakes=_gae_mistakes(**inputs)):
            return False
    return checker.passed("The agent computes its advantages exactly like this once per cycle.")


def _explained_variance_case(values, returns):
    return dict(values=np.array(values, dtype=np.float64), returns=np.array(returns, dtype=np.float64))


# (name, inputs, hint if this case fails). Var[R] ≠ 1 and mean(R − V) ≠ 0 in the later cases, so
# forgetting to divide, or using the mean squared error, changes the answer.
EXPLAINED_VARIANCE_CASES = [
    ("perfect estimates: V = R",
     _explained_variance_case([1.0, 3.0, 2.0, 6.0], [1.0, 3.0, 2.0, 6.0]),
     "When V predicts every return, R − V is 0 everywhere, so Var[R − V] = 0 and EV = 1."),
    ("estimates that only know the mean return",
     _explained_variance_case([3.0, 3.0, 3.0, 3.0], [1.0, 3.0, 2.0, 6.0]),
     "Predicting the mean everywhere leaves all of Var[R] unexplained: Var[R − V] = Var[R], so EV = 0."),
    ("a typical cycle: good estimates, off by a constant",
     _explained_variance_case([0.5, 2.0, 1.0, 4.5, 3.0], [1.0, 3.0, 2.0, 6.0, 3.5]),
     "EV = 1 − Var[R − V] / Var[R], with population variances (np.var)."),
    ("estimates worse than the mean (EV < 0)",
     _explained_variance_case([6.0, 1.0, 5.0, 0.0], [1.0, 3.0, 2.0, 6.0]),
     "EV is not clipped at 0: estimates that move against the returns give a negative value."),
    ("returns of several workers, shape (T, workers) = (3, 2)",
     _explained_variance_case([[0.0, 1.0], [2.0, 0.5], [1.5, 2.5]], [[0.5, 1.5], [2.5, 0.0], [1.0, 4.0]]),
     "Take the variances over all samples together (np.var of the whole array), and return one number."),
    ("all returns equal: Var[R] = 0",
     _explained_variance_case([1.0, 2.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0]),
     "With Var[R] = 0 there is nothing to explain and 1 − Var[R − V] / 0 has no meaning: check for it first "
     "and return float('nan')."),
]


def _explained_variance_mistakes(values, returns):
    errors_variance, returns_variance = np.var(returns - values), np.var(returns)
    mistakes = []
    if returns_variance > 0:
        mistakes += [
            (np.var(values) / returns_variance,
             "You compute Var[V] / Var[R], how much V varies, not how well it predicts R. Measure the error: "
             "EV = 1 − Var[R − V] / Var[R]."),
            (1.0 - np.std(returns - values) / np.std(returns),
             "You divide standard deviations; EV uses variances: 1 − Var[R − V] / Var[R] (np.var, not np.std)."),
            (1.0 - np.mean((returns - values) ** 2) / returns_variance,
             "You use the mean squared error mean((R − V)²), which also counts a constant offset of V as "
             "unexplained (that is R², the coefficient of determination). EV uses Var[R − V]: the spread of "
             "the errors around their own mean."),
        ]
    else:
        mistakes += [
            (-np.inf, "All returns are equal, so Var[R] = 0 and you divided by zero. Check for Var[R] = 0 first "
                      "and return float('nan')."),
            (0.0, "With Var[R] = 0 the question has no answer; 0 would claim V is exactly as good as the mean. "
                  "Return float('nan')."),
            (1.0, "With Var[R] = 0 the question has no answer; 1 would claim V is perfect. Return float('nan')."),
        ]
    mistakes.append(
        (1.0 - errors_variance,
         "You forgot to divide by Var[R]: 1 − Var[R − V] alone depends on the returns' scale. "
         "EV = 1 − Var[R − V] / Var[R] is a share of the returns' variance."))
    values_variance = np.var(values)
    # Arguments swapped: 1 − Var[V − R] / Var[V]; with Var[V] = 0 that is −inf, or NaN from a
    # function that guards its (wrong) denominator.
    swapped = [1.0 - errors_variance / values_variance] if values_variance > 0 else [-np.inf, np.nan]
    mistakes += [(value, "Your function seems to take the arguments the other way round: it is called "
                         "explained_variance(values, returns), values first, and divides by the variance of the "
                         "*returns*.") for value in swapped]
    return mistakes


def check_explained_variance(learner_function) -> bool:
    """Check ``learner_function(values, returns) -> float``, the explained variance

        EV = 1 − Var[R − V] / Var[R],   NaN when Var[R] = 0,

    with V the value estimates, R the value targets (returns), and population variances. It is
    called with two NumPy arrays by position (values first), so the parameters may have any name.
    """
    from dexterity_nb.agent.objectives import explained_variance

    checker = Checker("explained variance")
    for name, inputs, hint in EXPLAINED_VARIANCE_CASES:
        expected = explained_variance(**inputs)
        try:
            with np.errstate(all="ignore"):  # a division by zero is feedback, not a warning
                got = learner_function(inputs["values"].copy(), inputs["returns"].copy())
        except ZeroDivisionError as error:
            checker.cases += 1
            return checker.fail(name, f"Your code raised ZeroDivisionError: {error}", inputs,
                                "All returns are equal, so Var[R] = 0. Check for it before dividing and return "
                                "float('nan').")
        except Exception as error:  # noqa: BLE001 — any error is feedback for the learner
            return checker.crashed(name, error, inputs)
        if got is not None:
            try:
                got_array = as_array(got)
            except (TypeError, ValueError):
                got_array = None
            if got_array is not None and got_array.ndim >= 1 and got_array.size > 1:
                checker.cases += 1
                return checker.fail(name, f"Expected one number, got an array of shape {got_array.shape}.", inputs,
                                    "Take the variance over all samples (np.var without axis) so the result is one number.")
            if got_array is not None and got_array.size == 1:
                got = got_array.reshape(())
        with np.errstate(all="ignore"):
            mistakes = _explained_variance_mistakes(**inputs)
        if not checker.compare(name, inputs, expected, got, hint, mistakes=mistakes):
            return False
    return checker.passed("The agent records this every cycle as history['explained_variance'].")
