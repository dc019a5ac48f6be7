"""Checkers for the tutorials' exercises: ``check_xxx(your_function)`` prints feedback, returns True/False.

Each checker runs your code on reference cases computed with the package's own functions (for
example :mod:`dexterity_nb.agent.objectives`). At the first case that goes wrong it shows the
input, what was expected, what your code returned and a hint. Your function is called with its
arguments by position (name the parameters as you like) and on copies (changing an input in place
is reported). An answer that runs the package's own implementation of the exercise is refused:
the point is to write it. How the checkers judge: :mod:`dexterity_nb.exercises.feedback`.

==============================  ===========  ===============================================
checker                         tutorial     you write
==============================  ===========  ===============================================
check_ppo_loss                  00           the whole PPO loss of one minibatch
check_clipped_surrogate         01           the PPO policy loss
check_behaviour_log_probability 02           log μ(a|s) of an ε-greedy behaviour policy
check_mixture_gatherer          02           an ε-greedy Gatherer returning log μ(a|s)
check_reward_scale_transformer  03           a transformer scaling rewards by a constant
check_gaussian_log_probability  04           log π(a) of a diagonal Gaussian
check_model_builder             05           a model builder for any action space
check_gae                       06           generalised advantage estimation
check_stop_when_solved          07           a callback that stops a solved drill
check_merge_moments             08           merging count/mean/variance of two samples
check_explained_variance        09           explained variance of the value estimates
check_reset_mask                10           the reset mask of training chunks
check_count_bonus               11           a visit-count bonus (an IntrinsicReward)
==============================  ===========  ===============================================
"""

import importlib

_WHERE = {
    "check_ppo_loss": "theory",
    "check_clipped_surrogate": "objectives",
    "check_gae": "objectives",
    "check_explained_variance": "diagnostics",
    "check_behaviour_log_probability": "gatherers",
    "check_mixture_gatherer": "gatherers",
    "check_reward_scale_transformer": "transformers",
    "check_gaussian_log_probability": "distributions",
    "check_model_builder": "models",
    "check_stop_when_solved": "callbacks",
    "check_merge_moments": "statistics",
    "check_reset_mask": "memory",
    "check_count_bonus": "curiosity",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"dexterity_nb.exercises.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'dexterity_nb.exercises' has no attribute {name!r}")


def __dir__():
    return __all__
