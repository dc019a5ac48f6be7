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

__all__ = ["check_behaviour_log_probability", "check_mixture_gatherer"]


def _behaviour_log_probability(policy_log_probability, n_actions, epsilon):
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
    ("a batch, 3 actions, ε = 0.3", dict(policy_log_probability=np.log([0.02, 0.3, 0.68]), n_actions=3, epsilon=0.3),
     "μ = (1 − ε) · exp(log π) + ε / n for each element, then the log."),
]


def _behaviour_mistakes(policy_log_probability, n_actions, epsilon):
    policy = np.exp(np.asarray(policy_log_probability, dtype=np.float64))
    return [
        ((1 - epsilon) * policy + epsilon / n_actions,
         "That is μ itself; return its log, log μ = log((1 − ε) · π + ε / n)."),
        ((1 - epsilon) * np.asarray(policy_log_probability) + epsilon * np.log(1 / n_actions),
         "Mix probabilities, not log-probabilities: μ = (1 − ε) · π + ε / n, then take the log."),
        (np.log((1 - epsilon) * policy + epsilon),
         "The random branch spreads ε over all n actions: each gets ε / n, not ε."),
        (np.log((1 - epsilon) * policy + epsilon / 2),
         f"Use the `n_actions` argument (here {n_actions}), not a fixed 2."),
        (np.log(0.9 * policy + 0.1 / n_actions),
         f"Use the `epsilon` argument (here {epsilon}), not a fixed 0.1."),
        (np.log(epsilon * policy + (1 - epsilon) / n_actions),
         "ε is the chance of the *random* branch: μ = (1 − ε) · π + ε / n, not ε · π + (1 − ε) / n."),
    ]


def check_behaviour_log_probability(learner_function) -> bool:
    """Check ``learner_function(policy_log_probability, n_actions, epsilon) -> log μ(a|s)``."""
    checker = Checker("behaviour-policy log-probability", forbidden=[_behaviour_log_probability])
    for name, inputs, hint in BEHAVIOUR_CASES:
        expected = _behaviour_log_probability(**inputs)
        ok, got = checker.call(name, learner_function, inputs, hint)
        if not ok:
            return False
        try:
            same_as_policy = np.allclose(as_array(got), inputs["policy_log_probability"], atol=1e-6)
        except (TypeError, ValueError):
            same_as_policy = False
        if same_as_policy and inputs["epsilon"] > 0:
            return checker.fail(name, "Your function returned the *policy's* log-probability unchanged.", inputs,
                                "That is the founding tutorial's choice; here we want the behaviour policy μ, which "
                                "also includes the ε / n chance of the random branch.")
        if not checker.compare(name, inputs, expected, got, hint, atol=1e-6, mistakes=_behaviour_mistakes(**inputs)):
            return False
    return checker.passed()


GATHERER_CASES = [  # (name, the policy's probabilities π(a|s) for a state)
    ("2 actions, the policy prefers action 0", [0.9, 0.1]),
    ("2 actions, the policy prefers action 1", [0.3, 0.7]),
    ("3 actions", [0.6, 0.3, 0.1]),
    ("5 actions", [0.05, 0.1, 0.15, 0.2, 0.5]),
]


def _stand_in_env(n_actions, seed):
    """An env with ``Discrete(n_actions)`` actions: ``select_action`` never steps it."""
    import gymnasium

    class ActionsOnly(gymnasium.Env):
        def __init__(self):
            self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
            self.action_space = gymnasium.spaces.Discrete(n_actions, seed=seed)  # action_space.sample() repeatable

    return ActionsOnly()


def _frequency_mistakes(policy, epsilon):
    n = len(policy)
    greedy = np.eye(n)[np.argmax(policy)]
    mistakes = [
        ((1 - epsilon) * greedy + epsilon / n,
         "In the policy's branch *sample* from π (super().select_action(...)) instead of taking its most likely "
         "action: PPO's policy is stochastic."),
        (policy, "Your gatherer never takes the random branch: with probability ε (self.epsilon) take a uniformly "
                 "random action."),
        (epsilon * policy + (1 - epsilon) / n,
         "The coin is the wrong way round: with probability ε explore, otherwise follow the policy."),
    ]
    if n > 2:
        mistakes.append(((1 - epsilon) * policy + epsilon * np.array([0.5, 0.5] + [0.0] * (n - 2)),
                         "The random branch must choose among all n actions (n = self.distribution.action_space.n), "
                         "not 2."))
    return mistakes


def _log_probability_hint(returned, action, policy, epsilon):
    n = len(policy)
    if math.isclose(returned, math.log(policy[action]), abs_tol=1e-4):
        return ("This is the policy's log-probability log π(a|s): the founding tutorial's choice. The data was "
                "gathered by μ, so return log μ(a|s) = log((1 − ε)·π(a|s) + ε/n) — for actions of both branches.")
    if n != 2 and math.isclose(returned, math.log((1 - epsilon) * policy[action] + epsilon / 2), abs_tol=1e-4):
        return "n is the number of actions, self.distribution.action_space.n (here " + str(n) + "), not 2."
    return "Return log μ(a|s) = log((1 − ε)·π(a|s) + ε/n) for every action, whichever branch chose it."


_CHOOSE_HINT = ("With probability ε take a uniformly random action (self.distribution.action_space.sample() or "
                "self.rng.integers(n)), otherwise sample from the policy (super().select_action(...)). Use self.rng "
                "for the coin flip so each worker's stream stays reproducible.")


def check_mixture_gatherer(gatherer_class, samples: int = 4000) -> bool:
    """Check a ``Gatherer`` subclass that acts ε-greedily and returns log μ(a|s) for every action.

    It is played ``samples`` times on fixed logits for 2, 3 and 5 actions. The action frequencies
    must match μ = (1 − ε)·π + ε/n (ε is read from the gatherer's attribute ``epsilon``, default
    0.1), every returned pair must be one the agent accepts, every returned log-probability must
    be log μ(action) — whichever branch chose the action — and two gatherers built with the same
    seed must choose the same actions.
    """
    from dexterity_nb.agent.gather import Gatherer

    checker = Checker("ε-greedy gatherer with the behaviour policy's log-probability",
                      forbidden=[_behaviour_log_probability])
    if not (isinstance(gatherer_class, type) and issubclass(gatherer_class, Gatherer)):
        return checker.fail("the class itself", f"Expected a subclass of Gatherer, got {gatherer_class!r}.",
                            hint="Write `class MyGatherer(Gatherer):` and pass the class (no parentheses).")
    for case, probabilities in GATHERER_CASES:
        if not _judge_case(checker, gatherer_class, case, np.array(probabilities), samples):
            return False
    if not _reproducible(checker, gatherer_class):
        return False
    return checker.passed("PPO's ratio now compares the new policy with the policy that really acted.")


def _new_gatherer(checker, gatherer_class, case, n_actions, seed):
    """``(ok, gatherer)``: the learner's class built as the agent builds it, on a stand-in env."""
    from dexterity_nb.common.policies import Categorical

    env = _stand_in_env(n_actions, seed)
    return checker.call(case, gatherer_class, {"worker_id": 0, "env": env, "distribution": Categorical(env.action_space),
                                               "rng": np.random.default_rng(seed)})


def _play(checker, gatherer, case, logits, samples, inputs):
    """``(actions, log-probabilities)`` of ``samples`` calls, each checked as the agent checks it; None after a failure."""
    from dexterity_nb.agent.gather import GathererError, _check_action, _check_log_probability, _unpack_selection

    actions, log_probabilities = [], []
    for _ in range(samples):
        ok, selection = checker.call(case, gatherer.select_action, {"predicted_parameters": [logits]}, _CHOOSE_HINT)
        if not ok:
            return None
        try:
            action, log_probability = _unpack_selection(gatherer, selection)
            actions.append(_check_action(gatherer, action, gatherer.distribution.action_space))
            log_probabilities.append(_check_log_probability(gatherer, log_probability))
        except (GathererError, TypeError, ValueError) as error:
            checker.cases += 1
            checker.fail(case, f"The agent would refuse this: {error}", inputs,
                         "Return the pair `action, log_probability`: an int action of the env's action space and one "
                         "number, log μ(action).")
            return None
    return np.array(actions), np.array(log_probabilities)


def _judge_case(checker, gatherer_class, case, policy, samples) -> bool:
    """Play one policy ``samples`` times; judge the frequencies and every log-probability."""
    from dexterity_nb.agent.gather import GathererError, _check_logarithms

    logits = np.log(policy[None, :]).astype(np.float32)
    ok, gatherer = _new_gatherer(checker, gatherer_class, case + " (creating the gatherer)", len(policy), seed=7)
    if not ok:
        return False
    epsilon = float(getattr(gatherer, "epsilon", 0.1))
    inputs = {"predicted_parameters": [logits], "epsilon": epsilon}
    played = _play(checker, gatherer, case, logits, samples, inputs)
    if played is None:
        return False
    actions, log_probabilities = played
    checker.cases += 1
    mixture = (1.0 - epsilon) * policy + epsilon / len(policy)
    frequencies = np.bincount(actions, minlength=len(policy)) / samples
    # 5 binomial standard deviations per action: a right gatherer fails by chance about once in 10⁶ checks.
    tolerance = 5 * np.sqrt(mixture * (1 - mixture) / samples) + 0.002
    if np.any(np.abs(frequencies - mixture) > tolerance):
        named = [hint for wrong, hint in _frequency_mistakes(policy, epsilon)
                 if np.all(np.abs(frequencies - wrong) <= tolerance)]
        return checker.fail(
            case, f"Over {samples} calls the actions came with frequencies {np.round(frequencies, 3)}; "
                  f"expected about {np.round(mixture, 3)} = (1 − ε)·π + ε/n with ε = {epsilon}.", inputs,
            " Or: ".join(named) if named else _CHOOSE_HINT)
    try:  # the agent's own test: a probability, or −log π, where log μ belongs
        _check_logarithms([gatherer] * samples, gatherer.distribution, actions, log_probabilities,
                          [np.repeat(logits, samples, axis=0)])
    except GathererError as error:
        return checker.fail(case, f"The agent would refuse this: {error}", inputs)
    expected = np.log(mixture)[actions]
    wrong = np.flatnonzero(~np.isclose(log_probabilities, expected, atol=1e-4))
    if wrong.size:
        index = wrong[0]
        return checker.fail(
            case, f"{wrong.size} of {samples} returned log-probabilities are wrong; e.g. for action "
                  f"{actions[index]} you returned {log_probabilities[index]:.4f}, expected {expected[index]:.4f}.",
            inputs, _log_probability_hint(log_probabilities[index], actions[index], policy, epsilon))
    return True


def _reproducible(checker, gatherer_class, calls=200) -> bool:
    """Two workers built with the same seed must choose the same actions (a seeded run is repeatable)."""
    case = "two workers with the same seed choose the same actions"
    logits = np.log(np.array([[0.6, 0.3, 0.1]], dtype=np.float32))
    chosen = []
    for _ in range(2):
        ok, gatherer = _new_gatherer(checker, gatherer_class, case, 3, seed=11)
        if not ok:
            return False
        selections = []
        for _ in range(calls):
            ok, selection = checker.call(case, gatherer.select_action, {"predicted_parameters": [logits]})
            if not ok:
                return False
            selections.append(repr(selection))  # the action and its log-probability, as returned
        chosen.append(selections)
    checker.cases += 1
    if chosen[0] != chosen[1]:
        return checker.fail(case, f"Two gatherers built with the same seed chose different actions over {calls} calls.",
                            {"predicted_parameters": [logits]},
                            "Draw every random number from the worker's own stream: `self.rng.random()` for the coin, "
                            "`self.rng.integers(n)` or `self.distribution.action_space.sample()` for the action, not "
                            "Python's `random` or `np.random`, so that a seeded run can be repeated.")
    return True
