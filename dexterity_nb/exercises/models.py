"""Exercise on model builders (tutorial 05): a network builder that works for any action space.

The builder is judged by what its models do, not by how they are written:

* for Discrete spaces of 2 and 3 actions (Categorical) and Box spaces of 1 and 2 dimensions
  (Gaussian, Beta), the policy returns the distribution's parameters with the right shapes and the
  value model returns ``(batch, 1)``;
* the heads can reach what they stand for. The value V(s) and a Categorical head's logits can be
  any real number, so a bounded activation (tanh, sigmoid, relu, softmax) on them is wrong. To
  see it without reading the code, the checker sets the weights of the model's last ``Dense``
  layer so that its pre-activation is ±1000 and reads the output: a linear head gives about
  ±1000, a tanh head ±1, a relu head 0 on the negative side, a softmax head a probability;
* ``shared`` is honoured (common variables with ``shared=True``, none with ``shared=False``), and so
  is ``hidden_units``, which ``get_model_builder(..., hidden_units=...)`` passes by that name.
"""

from __future__ import annotations

import inspect

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_model_builder"]

_REACH = 1000.0  # the pre-activation the probe sets; a head that can output any real number gets back about this


def _cases():
    """(name, observation space, distribution, shared) for each case."""
    import gymnasium

    from dexterity_nb.common.policies import Beta, Categorical, Gaussian

    cartpole = gymnasium.make("CartPole-v1")
    pendulum = gymnasium.make("Pendulum-v1")
    box = gymnasium.spaces.Box(-1.0, 1.0, (6,), np.float32)
    yield "CartPole-v1 (2 discrete actions, Categorical)", cartpole.observation_space, Categorical(cartpole.action_space), False
    yield "CartPole-v1 (2 discrete actions, Categorical)", cartpole.observation_space, Categorical(cartpole.action_space), True
    yield "Pendulum-v1 (1 continuous action, Gaussian)", pendulum.observation_space, Gaussian(pendulum.action_space), False
    yield "Pendulum-v1 (1 continuous action, Gaussian)", pendulum.observation_space, Gaussian(pendulum.action_space), True
    yield "6 observations, 3 discrete actions (Categorical)", box, Categorical(gymnasium.spaces.Discrete(3)), False
    yield ("6 observations, 2 continuous actions in [−1, 1] (Beta)", box,
           Beta(gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)), True)


def _layers(model):
    """Every layer of ``model`` in order, looking inside nested models."""
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from _layers(layer)
        else:
            yield layer


def _last_dense(model, units):
    """The last layer with a kernel of ``units`` outputs (the head), or None."""
    found = None
    for layer in _layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 2 and kernel.shape[-1] == units:
            found = layer
    return found


def _reach(model, layer, observations, targets, output=0):
    """The model's outputs when ``layer``'s pre-activation is set to ``targets`` for every observation."""
    import keras

    saved = layer.get_weights()
    try:
        if getattr(layer, "bias", None) is not None:
            layer.set_weights([np.zeros(layer.kernel.shape, dtype=np.float32), np.asarray(targets, dtype=np.float32)])
        else:  # no bias: reach the targets through the kernel, for the first observation
            features = np.asarray(keras.Model(model.input, layer.input)(observations), dtype=np.float64)[0]
            kernel = np.outer(features, targets) / max(float(features @ features), 1e-12)
            layer.set_weights([kernel.astype(np.float32)])
        outputs = model(observations)
        outputs = outputs[output] if isinstance(outputs, (list, tuple)) else outputs
        return np.asarray(outputs, dtype=np.float64)[0]
    finally:
        layer.set_weights(saved)


def _unbounded(model, units, observations, output=0):
    """None if the head can output about ±_REACH; otherwise the outputs it gave for ±_REACH."""
    layer = _last_dense(model, units)
    if layer is None:
        return None  # no Dense head to probe: nothing to conclude
    targets = np.full(units, _REACH)
    targets[1::2] = -_REACH  # one sign per output, for a head with several outputs
    try:
        outputs = [_reach(model, layer, observations, sign * targets, output) for sign in (1.0, -1.0)]
    except Exception:  # noqa: BLE001 — a head this probe cannot set (a layer used twice, ...): nothing to conclude
        return None
    if all(np.all(np.abs(got - sign * targets) < 0.5 * _REACH) for got, sign in zip(outputs, (1.0, -1.0))):
        return None
    return outputs


def _dense_units(model):
    return [layer.kernel.shape[-1] for layer in _layers(model) if getattr(layer, "kernel", None) is not None
            and len(layer.kernel.shape) == 2]


def _accepts_hidden_units(builder_function):
    try:
        parameters = inspect.signature(builder_function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(parameter.name == "hidden_units" or parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)


def _check_one(checker, builder_function, case, observation_space, distribution, shared, keras):
    """Build one case and check what came back is a pair of Keras models; False after reporting a failure."""
    inputs = {"observation_space": observation_space, "distribution": distribution, "shared": shared}
    ok, built = checker.call(case, builder_function, inputs,
                             "Build everything from the arguments: keras.Input(observation_space.shape), "
                             "distribution.build_heads(features) for the policy, Dense(1) for the value.")
    if not ok:
        return False
    checker.cases += 1
    if built is None:
        return checker.fail(case, "Your builder returned None.", inputs,
                            "Finish the exercise and `return policy, value` (two keras.Model objects).")
    if not (isinstance(built, (tuple, list)) and len(built) == 2):
        return checker.fail(case, f"Your builder returned {type(built).__name__} {built!r:.80}; expected the pair "
                                  "(policy, value).", inputs, "End with `return policy, value`.")
    policy, value = built
    if not (isinstance(policy, keras.Model) and isinstance(value, keras.Model)):
        return checker.fail(case, f"Expected two keras.Model objects (policy, value); got {type(policy).__name__} "
                                  f"and {type(value).__name__}.", inputs,
                            "End with `return keras.Model(inputs, heads), keras.Model(inputs, value_output)`.")
    return _judge_models(checker, case, inputs, policy, value)


def _judge_models(checker, case, inputs, policy, value) -> bool:
    """Shapes, reach of the value and logit heads, and sharing of one built pair; False after reporting."""
    observation_space, distribution, shared = inputs["observation_space"], inputs["distribution"], inputs["shared"]
    observations = np.random.default_rng(0).normal(size=(3, *observation_space.shape)).astype(np.float32)
    try:
        outputs = policy(observations)
        values = np.asarray(value(observations))
    except Exception as error:  # noqa: BLE001
        return checker.crashed(case + " (calling the models on a batch of 3 observations)", error, inputs,
                               "Both models take a batch of observations of shape observation_space.shape: build "
                               "them on keras.Input(observation_space.shape).")
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    heads_hint = ("Let the distribution make the heads: `heads = distribution.build_heads(features)`; then the same "
                  "builder works for every action space.")
    if len(outputs) != distribution.parameter_count:
        return checker.fail(case, f"The policy returns {len(outputs)} output(s); {distribution!r} needs "
                                  f"{distribution.parameter_count}.", inputs, heads_hint)
    size = distribution.n if hasattr(distribution, "n") else distribution.size
    shapes = [tuple(np.shape(output)) for output in outputs]
    if any(shape != (3, size) for shape in shapes):
        return checker.fail(case, f"For 3 observations the policy returned shapes {shapes}; {distribution!r} needs "
                                  f"{[(3, size)] * distribution.parameter_count}.", inputs, heads_hint)
    if values.shape != (3, 1):
        return checker.fail(case, f"For 3 observations the value model returned shape {values.shape}; expected (3, 1).",
                            inputs, "Finish the value network with a Dense(1) layer: one number V(s) per observation.")
    bounded = _unbounded(value, 1, observations)
    if bounded is not None:
        return checker.fail(case, f"Your value head cannot reach large values: asked for ±{_REACH:.0f} before its "
                                  f"activation, it gave {bounded[0][0]:.3g} and {bounded[1][0]:.3g}.", inputs,
                            "V(s) estimates a return, which can be any real number (Pendulum's go down to about "
                            "−1,600): use keras.layers.Dense(1) with no activation (no tanh, relu, sigmoid or softmax).")
    if hasattr(distribution, "n"):
        bounded = _unbounded(policy, size, observations)
        if bounded is not None:
            return checker.fail(case, f"Your Categorical head cannot reach large logits: asked for ±{_REACH:.0f} "
                                      f"before its activation, it gave {np.round(bounded[0], 3)}.", inputs,
                                "The Categorical head outputs *logits* (any real numbers); the distribution applies "
                                "the softmax itself. No activation on it: use distribution.build_heads(features).")
    policy_ids = {id(variable) for variable in policy.trainable_variables}
    common = [variable for variable in value.trainable_variables if id(variable) in policy_ids]
    if shared and not common:
        return checker.fail(case, "With shared=True the policy and value models have no layer in common.", inputs,
                            "When `shared` is true, feed the same hidden features to the policy heads and the value head.")
    if not shared and common:
        return checker.fail(case, f"With shared=False the two models still share {len(common)} variable(s).", inputs,
                            "When `shared` is false, build a separate stack of hidden layers for the value.")
    return True


def check_model_builder(builder_function) -> bool:
    """Check ``builder_function(observation_space, distribution, shared, hidden_units=...) -> (policy, value)``.

    Both are Keras models taking a batch of observations; the policy returns the distribution's
    parameters (from ``distribution.build_heads``), the value a real number per observation, shape
    ``(batch, 1)``; with ``shared=True`` the two share hidden layers, with ``shared=False`` none.
    The first three arguments are passed by position, ``hidden_units`` by name (as
    ``get_model_builder`` does). See the module docstring for how the heads are probed.
    """
    from dexterity_nb.common.quiet_import import keras
    from dexterity_nb.models import build_feed_forward

    checker = Checker("model builder", forbidden=[build_feed_forward])
    cases = list(_cases())
    for case, observation_space, distribution, shared in cases:
        if not _check_one(checker, builder_function, f"{case}, shared={shared}", observation_space, distribution,
                          shared, keras):
            return False
    case, observation_space, distribution, _ = cases[0]
    case = f"{case}, hidden_units=(16, 8)"
    inputs = {"observation_space": observation_space, "distribution": distribution, "shared": False,
              "hidden_units": (16, 8)}
    hint = ("get_model_builder(..., hidden_units=(32, 32)) passes `hidden_units` by that name: keep the parameter "
            "`hidden_units` and make one Dense layer per entry, `for units in hidden_units: ...`.")
    if not _accepts_hidden_units(builder_function):
        checker.cases += 1
        return checker.fail(case, "Your builder has no parameter `hidden_units`.", inputs, hint)
    ok, built = checker.call(case, builder_function, dict(list(inputs.items())[:3]), hint,
                             keywords={"hidden_units": (16, 8)})
    if not ok:
        return False
    checker.cases += 1
    try:
        units = _dense_units(built[0])
    except Exception as error:  # noqa: BLE001
        return checker.crashed(case, error, inputs, hint)
    if not any(units[index:index + 2] == [16, 8] for index in range(len(units))):
        return checker.fail(case, f"The policy's Dense layers have {units} units; expected hidden layers of 16 and 8 "
                                  "units, then the head.", inputs, hint)
    return checker.passed("Register it with register_model_builder(name, model_type) and any agent can use it.")
