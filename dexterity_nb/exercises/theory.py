"""Exercise of tutorial 00 ("PPO in one page"): the whole loss of one minibatch.

    Â   = (A − mean A) / (std A + 10⁻⁸)          over the minibatch, population std (ddof = 0)
    ρ_t = exp(log π_θ(a_t|s_t) − log π_old(a_t|s_t))
    L   = −mean_t min(ρ_t Â_t, clip(ρ_t, 1 − ε, 1 + ε) Â_t)  +  c_value · ½ mean_t (V(s_t) − R_t)²  −  c_entropy · mean_t H_t

The reference is put together from :mod:`dexterity_nb.agent.objectives` exactly as
``PPOAgent``'s minibatch step does it (value clipping, off by default, left out).
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_ppo_loss", "PPO_LOSS_CASES"]

_ARGUMENTS = ("log_probability", "old_log_probability", "advantages", "values", "returns", "entropy",
              "clip", "c_value", "c_entropy")


def _case(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
    arrays = dict(log_probability=log_probability, old_log_probability=old_log_probability, advantages=advantages,
                  values=values, returns=returns, entropy=entropy)
    return {**{name: np.array(value, dtype=np.float32) for name, value in arrays.items()},
            "clip": clip, "c_value": c_value, "c_entropy": c_entropy}


# (name, inputs, hint if this case fails). Each case switches on the terms it tests, so one
# typical mistake changes its answer; the ratio is 1 (log π = log π_old) wherever the policy term
# is not the point, as in the first minibatch of every cycle.
PPO_LOSS_CASES = [
    ("the first minibatch of a cycle: ρ = 1 everywhere, c_value = c_entropy = 0",
     _case([-0.7, -0.2, -1.5, -0.4], [-0.7, -0.2, -1.5, -0.4], [2.0, -1.0, 0.5, 3.5], [0.0] * 4, [0.0] * 4,
           [0.6] * 4, 0.2, 0.0, 0.0),
     "With ρ = 1 the policy term is −mean(Â), and normalised advantages have mean 0, so the loss is 0. "
     "Normalise the advantages first: Â = (A − mean A) / (std A + 1e-8)."),
    ("ρ inside [1 − ε, 1 + ε], c_value = c_entropy = 0",
     _case([-0.65, -1.2, -0.5, -0.9], [-0.7, -1.1, -0.45, -1.0], [3.0, -1.0, 0.5, 1.5], [0.0] * 4, [0.0] * 4,
           [0.6] * 4, 0.2, 0.0, 0.0),
     "Inside the clip range the loss is −mean(ρ · Â), with Â = (A − mean A) / (std A + 1e-8) and the "
     "population standard deviation (np.std, tf.math.reduce_std)."),
    ("the value term alone: ρ = 1, c_value = 0.5, c_entropy = 0",
     _case([-0.3, -1.0, -0.8], [-0.3, -1.0, -0.8], [1.0, -2.0, 0.5], [0.5, 2.0, -1.0], [1.5, 1.0, 1.0],
           [0.6] * 3, 0.2, 0.5, 0.0),
     "The value loss is L^V = ½ mean (V − R)², added with weight c_value: + c_value · L^V."),
    ("the entropy term next to the value term: ρ = 1, c_value = 0.5, c_entropy = 0.1",
     _case([-0.3, -1.0, -0.8, -0.1], [-0.3, -1.0, -0.8, -0.1], [1.0, -2.0, 0.5, 0.0], [0.5, 1.0, 0.0, 2.0], [1.0] * 4,
           [0.69, 0.5, 0.3, 0.6], 0.2, 0.5, 0.1),
     "The entropy bonus is subtracted: − c_entropy · mean(H). Higher entropy must lower the loss."),
    ("ρ outside [1 − ε, 1 + ε], for positive and negative advantages, c_value = c_entropy = 0",
     _case([-0.2, -2.0, -0.2, -2.0], [-0.9, -0.5, -0.9, -0.5], [2.0, -1.5, -1.0, 0.5], [0.0] * 4, [0.0] * 4,
           [0.6] * 4, 0.2, 0.0, 0.0),
     "Per sample take min(ρ · Â, clip(ρ, 1 − ε, 1 + ε) · Â): clip the ratio, not the advantage, and keep the "
     "smaller (pessimistic) term."),
    ("all advantages equal, so std A = 0; every term on",
     _case([-0.2, -0.6, -1.1], [-0.5, -0.6, -0.9], [1.5, 1.5, 1.5], [1.0, 0.0, 2.0], [0.5, 0.5, 0.5],
           [0.4, 0.7, 0.5], 0.2, 0.5, 0.01),
     "With std A = 0, (A − mean A) / std A is 0 / 0. The 1e-8 in Â = (A − mean A) / (std A + 1e-8) is there for "
     "exactly this: every Â is 0 and the policy term vanishes."),
    ("a whole minibatch, every term on: ε = 0.1, c_value = 0.5, c_entropy = 0.01",
     _case([-0.1, -2.3, -0.4, -1.0, -0.5, -0.8], [-0.5, -1.6, -0.45, -0.2, -0.5, -0.7],
           [0.8, -1.2, 0.3, 2.0, -0.7, 1.1], [0.2, 1.4, -0.3, 0.9, 0.5, 2.2], [1.0, 0.4, 0.1, 2.5, 0.3, 1.8],
           [0.65, 0.2, 0.55, 0.4, 0.69, 0.1], 0.1, 0.5, 0.01),
     "L = −mean min(ρÂ, clip(ρ, 1 − ε, 1 + ε)Â) + c_value · ½ mean (V − R)² − c_entropy · mean H, each "
     "mean over the minibatch."),
]


def _reference(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy):
    """The loss of ``PPOAgent``'s minibatch step (``ppo_agent.py``), from the package's functions."""
    from dexterity_nb.agent import objectives

    policy_loss = objectives.clipped_surrogate_loss(
        log_probability, old_log_probability, objectives.normalize_advantages(advantages), clip)
    return float(policy_loss + c_value * objectives.value_loss(values, returns) - c_entropy * np.mean(entropy))


def _variant(log_probability, old_log_probability, advantages, values, returns, entropy, clip, c_value, c_entropy,
             normalise="population", epsilon=1e-8, policy="clipped", policy_sign=-1.0, value_half=True,
             value_sign=1.0, entropy_sign=-1.0, reduce=np.mean):
    """The loss with one thing done differently: what a typical mistake returns."""
    advantages = np.asarray(advantages, dtype=np.float64)
    if normalise == "population":
        advantages = (advantages - advantages.mean()) / (advantages.std() + epsilon)
    elif normalise == "sample":
        advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + epsilon)
    elif normalise == "centred":
        advantages = advantages - advantages.mean()
    log_ratio = np.asarray(log_probability, dtype=np.float64) - np.asarray(old_log_probability, dtype=np.float64)
    ratio = np.exp(log_ratio)
    clipped = np.clip(ratio, 1 - clip, 1 + clip) * advantages
    surrogate = {
        "clipped": lambda: np.minimum(ratio * advantages, clipped),
        "unclipped": lambda: ratio * advantages,
        "maximum": lambda: np.maximum(ratio * advantages, clipped),
        "clipped advantage": lambda: np.minimum(ratio * advantages, ratio * np.clip(advantages, 1 - clip, 1 + clip)),
        "log ratio": lambda: np.minimum(log_ratio * advantages, np.clip(log_ratio, 1 - clip, 1 + clip) * advantages),
    }[policy]()
    squared_error = (np.asarray(values, dtype=np.float64) - np.asarray(returns, dtype=np.float64)) ** 2
    value = (0.5 if value_half else 1.0) * reduce(squared_error)
    return (policy_sign * reduce(surrogate) + value_sign * c_value * value
            + entropy_sign * c_entropy * reduce(np.asarray(entropy, dtype=np.float64)))


def _mistakes(inputs):
    def variant(**changes):
        with np.errstate(all="ignore"):  # 0 / 0 is one of the mistakes
            return _variant(**inputs, **changes)

    swapped = {**inputs, "c_value": inputs["c_entropy"], "c_entropy": inputs["c_value"]}
    paper_objective = -variant()
    return [
        (variant(normalise=None), "You use the raw advantages. Normalise them over the minibatch first: "
                                  "Â = (A − mean A) / (std A + 1e-8)."),
        (variant(normalise="centred"), "You subtract the mean of the advantages but do not divide by their "
                                       "standard deviation: Â = (A − mean A) / (std A + 1e-8)."),
        (variant(normalise="sample"), "You divide by the sample standard deviation (ddof = 1, what torch.std gives "
                                      "by default). The agent uses the population one, np.std(A) or "
                                      "tf.math.reduce_std(A) (ddof = 0); on a minibatch this small the two differ."),
        (variant(epsilon=0.0), "All advantages are equal, so std A = 0 and (A − mean A) / std A is 0 / 0. Divide by "
                               "(std A + 1e-8) instead."),
        (paper_objective, "The sign of the whole loss is flipped: you return the paper's objective "
                          "mean min(ρÂ, clip(ρ)Â) − c_value · L^V + c_entropy · H, which is maximised. The optimiser "
                          "minimises, so return its negative."),
        (variant(policy_sign=1.0), "The policy term has the wrong sign: the loss holds −mean min(ρÂ, clip(ρ)Â), "
                                   "so that minimising it raises the surrogate."),
        (variant(policy="unclipped"), "There is no clipping: take min(ρ · Â, clip(ρ, 1 − ε, 1 + ε) · Â) per sample."),
        (variant(policy="maximum"), "You take the maximum of the two policy terms; PPO takes the minimum (the "
                                    "pessimistic one), so moving too far never pays."),
        (variant(policy="clipped advantage"), "Clip the ratio ρ, not the advantage."),
        (variant(policy="log ratio"), "ρ is a ratio of probabilities: ρ = exp(log π_θ − log π_old), not the "
                                      "difference of the log-probabilities."),
        (variant(value_half=False), "L^V = ½ mean (V − R)²: you left out the ½ (c_value multiplies the loss with the ½)."),
        (variant(value_sign=-1.0), "The value loss is added (+ c_value · L^V): a worse fit of V must raise the loss."),
        (variant(entropy_sign=1.0), "The entropy bonus is subtracted (− c_entropy · mean H): higher entropy must "
                                    "lower the loss, so that the optimiser keeps the policy exploring."),
        (variant(reduce=np.sum), "Average over the minibatch (mean, not sum)."),
        (_variant(**swapped), "c_value weighs the value loss and c_entropy the entropy; you have them the other way "
                              "round. The arguments come in the order ..., clip, c_value, c_entropy."),
    ]


def check_ppo_loss(learner_function) -> bool:
    """Check ``learner_function(log_probability, old_log_probability, advantages, values, returns, entropy,
    clip, c_value, c_entropy) -> loss``, one number:

        L = −mean min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) + c_value · ½ mean (V − R)² − c_entropy · mean H

    with ρ = exp(log π_θ − log π_old) and Â = (A − mean A) / (std A + 1e-8) over the minibatch
    (population std). The arrays have shape (B,) and are float32; ``clip``, ``c_value``,
    ``c_entropy`` are floats. It is called by position, so the parameters may have any name; it
    must not change its inputs, and must write the terms itself rather than call the package's
    ``normalize_advantages``, ``clipped_surrogate_loss`` or ``value_loss``.
    """
    from dexterity_nb.agent import objectives

    checker = Checker("the PPO loss of one minibatch", forbidden=(
        objectives.normalize_advantages, objectives.clipped_surrogate_loss, objectives.value_loss))
    for name, inputs, hint in PPO_LOSS_CASES:
        expected = _reference(**inputs)
        ran, got = checker.call(name, learner_function, {key: inputs[key] for key in _ARGUMENTS}, hint)
        if not ran:
            return False
        ran, got = checker.one_number(name, got, inputs, "The loss is one number: take the mean over the minibatch "
                                                         "of each term.")
        if not ran:
            return False
        if not checker.compare(name, inputs, expected, got, hint, mistakes=_mistakes(inputs)):
            return False
    return checker.passed("This is the loss PPOAgent minimises in every minibatch.")
