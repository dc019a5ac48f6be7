"""Exercises on gathering (tutorial 02): the behaviour policy's log-probability, and a gatherer
whose log-probabilities belong to the policy that really chose the actions.

An ε-greedy gatherer acts with the *behaviour policy*

    μ(a | s) = (1 − ε) · π(a | s) + ε / n        (n actions)

because with probability 1 − ε it samples from π and with probability ε it takes a uniformly
random action. PPO's ratio ρ = π_θ(a|s) / π_old(a|s) must use the probability of the policy that
gathered the data, so the gatherer should return log μ(a | s) for *every* action it takes,
whichever branch chose it.
"""

from __future__ import annotations

import math

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_behaviour_log_probability", "check_mixture_gatherer", "behaviour_log_probability_reference"]


def behaviour_log_probability_reference(policy_log_probability, n_actions, epsilon):
    """log((1 − ε) · exp(log π) + ε / n), elementwise."""
    policy_probability = np.exp(np.asarray(policy_log_probability, dtype=np.float64))
    return np.log((1.0 - epsilon) * policy_probability + epsilon / n_actions)


BEHAVIOUR_CASES = [
    ("a likely action, 2 actions, ε = 0.1", dict(policy_log_probability=math.log(0.8), n_actions=2, epsilon=0.1),
     "Mix probabilities, not log-probabilities: μ = (1 − ε) · π + ε / n, then take the log."),
    ("an unlikely action, 2 actions, ε = 0.1", dict(policy_log_probability=math.log(0.05), n_actions=2, epsilon=0.1),
     "Even an action the policy almost never picks gets at least ε / n from the random branch."),
    ("4 actions, ε = 0.25", dict(policy_log_probability=math.log(0.4), n_actions=4, epsilon=0.25),
     "The random branch spreads ε over all n actions: each gets ε / n, not ε."),
    ("ε = 0: the behaviour policy is the policy", dict(policy_log_probability=math.log(0.3), n_actions=3, epsilon=0.0),
     "With ε = 0 the result must equal the policy's log-probability."),
    ("ε = 1: purely random", dict(policy_log_probability=math.log(0.9), n_actions=2, epsilon=1.0),
     "With ε = 1 every action has probability 1 / n whatever the policy says."),
    ("a batch of log-probabilities at once", dict(policy_log_probability=np.log([0.1, 0.5, 0.9]), n_actions=2, epsilon=0.1),
     "Use NumPy functions (np.exp, np.log) so that arrays work as well as single numbers."),
]


def check_behaviour_log_probability(learner_function) -> bool:
    """Check ``learner_function(policy_log_probability, n_actions, epsilon) -> log μ(a|s)``."""
    checker = Checker("behaviour-policy log-probability")
    for name, inputs, hint in BEHAVIOUR_CASES:
        expected = behaviour_log_probability_reference(**inputs)
        try:
            got = learner_function(**inputs)
        except Exception as error:  # noqa: BLE001
            return checker.crashed(name, error, inputs)
        try:
            same_as_policy = np.allclose(as_array(got), inputs["policy_log_probability"], atol=1e-6)
        except (TypeError, ValueError):
            same_as_policy = False
        if same_as_policy and inputs["epsilon"] > 0:
            return checker.fail(name, "Your function returned the *policy's* log-probability unchanged.", inputs,
                                "That is the founding tutorial's choice; here we want the behaviour policy μ, which "
                                "also includes the ε / n chance of the random branch.")
        if not checker.compare(name, inputs, expected, got, hint, atol=1e-6):
            return False
    return checker.passed()


def _make_gatherer(gatherer_class, seed):
    import gymnasium

    from dexterity_nb.common.policies import Categorical

    env = gymnasium.make("CartPole-v1")
    distribution = Categorical(env.action_space)
    return gatherer_class(0, env, distribution, np.random.default_rng(seed)), distribution


def check_mixture_gatherer(gatherer_class, samples: int = 4000) -> bool:
    """Check a ``Gatherer`` subclass that acts ε-greedily and returns log μ(a|s) for every action.

    It is played ``samples`` times on fixed CartPole logits. The action frequencies must match
    μ = (1 − ε)·π + ε/2 (ε is read from the class attribute ``epsilon``, default 0.1), and every
    returned log-probability must be log μ(action) — whichever branch chose the action.
    """
    from dexterity_nb.agent.gather import Gatherer

    checker = Checker("ε-greedy gatherer with the behaviour policy's log-probability")
    if not (isinstance(gatherer_class, type) and issubclass(gatherer_class, Gatherer)):
        return checker.fail("the class itself", f"Expected a subclass of Gatherer, got {gatherer_class!r}.",
                            hint="Write `class MyGatherer(Gatherer):` and pass the class (no parentheses).")
    epsilon = float(getattr(gatherer_class, "epsilon", 0.1))
    for case, policy_probabilities in (("policy prefers action 0 (π = [0.9, 0.1])", [0.9, 0.1]),
                                       ("policy prefers action 1 (π = [0.3, 0.7])", [0.3, 0.7])):
        logits = np.log(np.array([policy_probabilities], dtype=np.float32))
        inputs = {"predicted_parameters": [logits], "epsilon": epsilon}
        mixture = (1.0 - epsilon) * np.array(policy_probabilities) + epsilon / 2
        try:
            gatherer, _ = _make_gatherer(gatherer_class, seed=7)
            results = [gatherer.select_action([logits.copy()]) for _ in range(samples)]
        except Exception as error:  # noqa: BLE001
            return checker.crashed(case, error, inputs)
        checker.cases += 1
        if results[0] is None:
            return checker.fail(case, "select_action returned None.", inputs,
                                "Finish the method and `return action, log_probability`.")
        try:
            actions = np.array([int(np.asarray(action).reshape(-1)[0]) for action, _ in results])
            log_probabilities = np.array([float(as_array(value).reshape(-1)[0]) for _, value in results])
        except (TypeError, ValueError, IndexError) as error:
            return checker.fail(case, f"select_action must return (action, log_probability); that failed: {error}.", inputs)
        frequencies = np.bincount(actions, minlength=2)[:2] / samples
        tolerance = 4 * math.sqrt(0.25 / samples) + 0.01
        if np.any(np.abs(frequencies - mixture) > tolerance):
            return checker.fail(
                case, f"Over {samples} calls the actions came with frequencies {np.round(frequencies, 3)}; "
                      f"expected about {np.round(mixture, 3)} = (1 − ε)·π + ε/2 with ε = {epsilon}.", inputs,
                "With probability ε take a uniformly random action (self.distribution.action_space.sample() or "
                "self.rng.integers(n)), otherwise sample from the policy (super().select_action(...)). Use self.rng "
                "for the coin flip so each worker's stream stays reproducible.")
        expected = np.log(mixture)[actions]
        wrong = np.flatnonzero(~np.isclose(log_probabilities, expected, atol=1e-4))
        if wrong.size:
            index = wrong[0]
            policy_log = math.log(policy_probabilities[actions[index]])
            hint = ("This is the policy's log-probability log π(a|s): the founding tutorial's choice. The data was "
                    "gathered by μ, so return log μ(a|s) = log((1 − ε)·π(a|s) + ε/n) — for actions of both branches."
                    if math.isclose(log_probabilities[index], policy_log, abs_tol=1e-4)
                    else "Return log μ(a|s) = log((1 − ε)·π(a|s) + ε/n) for every action, whichever branch chose it.")
            return checker.fail(
                case, f"{wrong.size} of {samples} returned log-probabilities are wrong; e.g. for action "
                      f"{actions[index]} you returned {log_probabilities[index]:.4f}, expected {expected[index]:.4f}.",
                inputs, hint)
    return checker.passed("PPO's ratio now compares the new policy with the policy that really acted.")
