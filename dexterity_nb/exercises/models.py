"""Exercise on model builders (tutorial 05): a network builder that works for any action space."""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_model_builder"]


def _spaces():
    import gymnasium

    from dexterity_nb.common.policies import Categorical, Gaussian

    cartpole = gymnasium.make("CartPole-v1")
    pendulum = gymnasium.make("Pendulum-v1")
    yield "CartPole-v1 (2 discrete actions, Categorical)", cartpole.observation_space, Categorical(cartpole.action_space)
    yield "Pendulum-v1 (1 continuous action, Gaussian)", pendulum.observation_space, Gaussian(pendulum.action_space)


def check_model_builder(builder_function) -> bool:
    """Check ``builder_function(observation_space, distribution, shared) -> (policy, value)``.

    For CartPole (Categorical) and Pendulum (Gaussian), with ``shared`` False and True: both are
    Keras models taking a batch of observations; the policy returns the distribution's parameters
    (``distribution.parameter_count`` outputs, from ``distribution.build_heads``); the value
    returns shape ``(batch, 1)``; with ``shared=True`` the two models share hidden layers, with
    ``shared=False`` they share none.
    """
    from dexterity_nb.common.quiet_import import keras

    checker = Checker("model builder")
    for space_name, observation_space, distribution in _spaces():
        for shared in (False, True):
            case = f"{space_name}, shared={shared}"
            inputs = {"observation_space": observation_space, "distribution": distribution, "shared": shared}
            checker.cases += 1
            try:
                built = builder_function(observation_space, distribution, shared)
                if built is None:
                    return checker.fail(case, "Your builder returned None.", inputs,
                                        "Finish the exercise and `return policy, value` (two keras.Model objects).")
                policy, value = built
            except Exception as error:  # noqa: BLE001
                return checker.crashed(case, error, inputs)
            if not (isinstance(policy, keras.Model) and isinstance(value, keras.Model)):
                return checker.fail(case, f"Expected two keras.Model objects (policy, value); got {type(policy).__name__} "
                                          f"and {type(value).__name__}.", inputs,
                                    "End with `return keras.Model(inputs, heads), keras.Model(inputs, value_output)`.")
            observations = np.zeros((3, *observation_space.shape), dtype=np.float32)
            try:
                outputs = policy(observations)
                values = np.asarray(value(observations))
            except Exception as error:  # noqa: BLE001
                return checker.crashed(case + " (calling the models on a batch of 3 observations)", error, inputs)
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            if len(outputs) != distribution.parameter_count:
                return checker.fail(case, f"The policy returns {len(outputs)} output(s); {distribution!r} needs "
                                          f"{distribution.parameter_count}.", inputs,
                                    "Let the distribution make the heads: `heads = distribution.build_heads(features)`; "
                                    "then the same builder works for every action space.")
            if values.shape != (3, 1):
                return checker.fail(case, f"For 3 observations the value model returned shape {values.shape}; expected (3, 1).",
                                    inputs, "Finish the value network with a Dense(1) layer: one number V(s) per observation.")
            policy_ids = {id(variable) for variable in policy.trainable_variables}
            common = [variable for variable in value.trainable_variables if id(variable) in policy_ids]
            if shared and not common:
                return checker.fail(case, "With shared=True the policy and value models have no layer in common.", inputs,
                                    "When `shared` is true, feed the same hidden features to the policy heads and the "
                                    "value head.")
            if not shared and common:
                return checker.fail(case, f"With shared=False the two models still share {len(common)} variable(s).", inputs,
                                    "When `shared` is false, build a separate stack of hidden layers for the value.")
    return checker.passed("Register it with @register_model_builder(name) and any agent can use it.")
