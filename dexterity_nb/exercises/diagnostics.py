"""Exercise on diagnostics (tutorial 09): the explained variance of the value estimates.

EV = 1 − Var[R − V] / Var[R] says how much of the returns' spread the critic explains; the
reference is :func:`dexterity_nb.agent.objectives.explained_variance`, the number the agent
records every cycle.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_explained_variance", "EXPLAINED_VARIANCE_CASES"]


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
    from dexterity_nb.agent import objectives

    checker = Checker("explained variance",
                      forbidden=[objectives.explained_variance, objectives.explained_variance_from_variances])
    for name, inputs, hint in EXPLAINED_VARIANCE_CASES:
        expected = objectives.explained_variance(**inputs)
        ok, got = checker.call(name, learner_function, inputs, hint)
        if not ok:
            return False
        ok, got = checker.one_number(name, got, inputs,
                                     "Take the variance over all samples (np.var without axis) so the result is one number.")
        if not ok:
            return False
        with np.errstate(all="ignore"):
            mistakes = _explained_variance_mistakes(**inputs)
        if not checker.compare(name, inputs, expected, got, hint, mistakes=mistakes):
            return False
    return checker.passed("The agent records this every cycle as history['explained_variance'].")
