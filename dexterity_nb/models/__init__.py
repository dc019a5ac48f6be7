"""Model builders: the networks of an agent, registered by name.

A *builder function* takes the observation space, the action distribution and ``shared``, and
returns two Keras models::

    policy: observation batch -> list of predicted parameters (distribution.build_heads)
    value:  observation batch -> V(s), shape (batch, 1)

When ``shared`` is true, both models use the same hidden layers. Register your own with::

    @register_model_builder("tiny", "ffn")
    def build_tiny(observation_space, distribution, shared, hidden_units=(16,)):
        ...
        return policy, value

and use it with ``get_model_builder("tiny", "ffn")``. Registering by name is what lets
``PPOAgent.load`` rebuild the networks of a saved agent: register the builder before loading.

**Recurrent types** (``"rnn"``, ``"gru"``, ``"lstm"``) remember: their networks carry a hidden
state from step to step of an episode, for tasks whose observation hides part of the state
(``make_env("CartPole-v1", mask_velocity=True)``). Their models take three inputs and return
their new state after the outputs::

    policy([observations (B, L, *obs), resets (B, L), state (B, S)]) -> [*parameters (B·L, ...), state (B, S)]
    value([observations, resets, state (B, S_v)])                       -> [V(s) (B·L, 1), state (B, S_v)]

B sequences of L steps: L = 1 while gathering (one step for every worker), L = the agent's
``chunk_length`` in training. ``resets[b, i]`` = 1 wipes the state before step i (a new episode
begins there). The outputs are flat, one row per step, like a feed-forward network's. The
``ResettingCell`` of ``models.layers`` does the wiping; ``build_recurrent`` shows how to use it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from numbers import Integral
from typing import Callable

import numpy as np

__all__ = ["get_model_builder", "register_model_builder", "ModelBuilder", "MODEL_BUILDERS", "RECURRENT_MODEL_TYPES",
           "build_feed_forward", "build_recurrent"]

MODEL_BUILDERS: dict[tuple[str, str], Callable] = {}
RECURRENT_MODEL_TYPES = ("rnn", "gru", "lstm")  # builders of these types return recurrent networks


def register_model_builder(name: str, model_type: str = "ffn", overwrite: bool = False):
    """Decorator registering ``function(observation_space, distribution, shared, **options)``."""

    def register(function):
        key = (name, model_type)
        if key in MODEL_BUILDERS and not overwrite and MODEL_BUILDERS[key] is not function:
            raise ValueError(f"A model builder {name!r} of type {model_type!r} is already registered; pass overwrite=True to replace it.")
        MODEL_BUILDERS[key] = function
        return function

    return register


class ModelBuilder:
    """A registered builder with its options; calling it builds ``(policy, value)``."""

    def __init__(self, name: str, model_type: str, shared: bool, options: dict):
        self.name, self.model_type, self.shared, self.options = name, model_type, bool(shared), dict(options)

    def __call__(self, observation_space, distribution):
        return MODEL_BUILDERS[(self.name, self.model_type)](observation_space, distribution, self.shared, **self.options)

    @property
    def recurrent(self) -> bool:
        return self.model_type in RECURRENT_MODEL_TYPES

    def config(self) -> dict:
        return {"model": self.name, "model_type": self.model_type, "shared": self.shared, **self.options}

    def __repr__(self):
        options = "".join(f", {key}={value!r}" for key, value in self.options.items())
        return f"get_model_builder({self.name!r}, {self.model_type!r}, shared={self.shared}{options})"


def get_model_builder(model: str = "simple", model_type: str = "ffn", shared: bool = False, **options) -> ModelBuilder:
    """Look up a registered builder. ``options`` go to the builder function (e.g. ``hidden_units``).

    Known, for ``model_type`` ``"ffn"`` (feed-forward): ``"simple"`` two tanh layers of 64 units;
    ``"wide"`` two of 256; ``"deep"`` three of 64 with ReLU. For ``"rnn"``, ``"gru"`` and ``"lstm"``
    (recurrent, see the module docstring): ``"simple"`` one tanh layer of 64 then a recurrent layer
    of 64; ``"wide"`` 256 and 256; ``"deep"`` two ReLU layers of 64 then 64.
    """
    for name, value in (("model", model), ("model_type", model_type)):
        if not isinstance(value, str):
            raise TypeError(f"`{name}` must be the name (a str) of a registered builder, e.g. "
                            f'get_model_builder("simple", "ffn"); got {value!r}.')
    if (model, model_type) not in MODEL_BUILDERS:
        known = ", ".join(f"({name!r}, {kind!r})" for name, kind in sorted(MODEL_BUILDERS, key=lambda key: key[::-1]))
        raise ValueError(
            f"Unknown model builder ({model!r}, {model_type!r}). Known: {known}. "
            "Add your own with @register_model_builder(name, model_type)."
        )
    if not isinstance(shared, bool):  # bool("no") would be True
        raise TypeError(f"`shared` must be True or False, got {shared!r}.")
    function = MODEL_BUILDERS[(model, model_type)]
    _check_options(model, model_type, function, options)
    if "hidden_units" in options and getattr(function, "checks_hidden_units", False):
        _check_hidden_units(options["hidden_units"])
    return ModelBuilder(model, model_type, shared, options)


def _check_options(model, model_type, function, options):
    """Refuse an option the builder function would only reject when the networks are built."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): let the call decide
        return
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [parameter.name for parameter in parameters[3:] if parameter.kind in keyword and not parameter.name.startswith("_")]
    for option in options:
        if option not in accepted:
            close = difflib.get_close_matches(option, accepted, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise TypeError(
                f"The model builder ({model!r}, {model_type!r}) has no option `{option}`; it accepts: "
                f"{', '.join(accepted) or 'no options'}.{hint}"
            )


def _check_hidden_units(hidden_units) -> tuple:
    """``hidden_units`` as a tuple of positive ints (one per hidden layer), or an error saying what came."""
    expected = "`hidden_units` must be a non-empty sequence of positive ints, one per hidden layer"
    example = "for example hidden_units=(64, 64) for two layers of 64 units"
    if isinstance(hidden_units, (str, bytes)) or not isinstance(hidden_units, Iterable):
        kind = type(hidden_units).__name__
        raise TypeError(f"{expected}, got {hidden_units!r} ({'an' if kind[0] in 'aeiou' else 'a'} {kind}); {example}"
                        + (f", or hidden_units=({hidden_units},) for one." if isinstance(hidden_units, Integral) else "."))
    units = tuple(hidden_units)
    if not units:
        raise ValueError(f"{expected}, got {hidden_units!r} (no layers); {example}.")
    for unit in units:
        if isinstance(unit, bool) or not isinstance(unit, Integral):
            raise TypeError(f"{expected}, got {hidden_units!r}: {unit!r} is not an int; {example}.")
        if unit <= 0:
            raise ValueError(f"{expected}, got {hidden_units!r}: a layer of {unit} units; {example}.")
    return tuple(int(unit) for unit in units)


def build_feed_forward(observation_space, distribution, shared, hidden_units=(64, 64), activation="tanh"):
    """Feed-forward networks with orthogonal initialisation (gain √2 hidden, 1 value head).

    The policy heads come from ``distribution.build_heads`` and start near zero (gain 0.01),
    so the first policy is close to uniform: a good start for exploration.
    """
    from dexterity_nb.common.quiet_import import keras

    if len(getattr(observation_space, "shape", ()) or ()) == 0:
        raise TypeError(
            f"Feed-forward builders take Box observations; got {observation_space}. "
            "Wrap the env with gymnasium.wrappers (e.g. FlattenObservation) first."
        )
    hidden_units = _check_hidden_units(hidden_units)

    def trunk(inputs, prefix):
        features = keras.layers.Flatten(name=f"{prefix}_flatten")(inputs) if len(observation_space.shape) > 1 else inputs
        for index, units in enumerate(hidden_units):
            features = keras.layers.Dense(
                units, activation=activation, kernel_initializer=keras.initializers.Orthogonal(2**0.5),
                name=f"{prefix}_hidden_{index}",
            )(features)
        return features

    observations = keras.Input(observation_space.shape, name="observation")
    policy_features = trunk(observations, "shared" if shared else "policy")
    value_features = policy_features if shared else trunk(observations, "value")
    value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value")(value_features)
    policy_model = keras.Model(observations, distribution.build_heads(policy_features), name="policy")
    value_model = keras.Model(observations, value, name="value")
    return policy_model, value_model


@register_model_builder("simple", "ffn")
def build_simple(observation_space, distribution, shared, hidden_units=(64, 64)):
    return build_feed_forward(observation_space, distribution, shared, hidden_units, "tanh")


@register_model_builder("wide", "ffn")
def build_wide(observation_space, distribution, shared, hidden_units=(256, 256)):
    return build_feed_forward(observation_space, distribution, shared, hidden_units, "tanh")


@register_model_builder("deep", "ffn")
def build_deep(observation_space, distribution, shared, hidden_units=(64, 64, 64)):
    return build_feed_forward(observation_space, distribution, shared, hidden_units, "relu")


for _builder in (build_simple, build_wide, build_deep):
    _builder.checks_hidden_units = True


def build_recurrent(observation_space, distribution, shared, cell_type, hidden_units=(64,), recurrent_units=64,
                    activation="tanh"):
    """Recurrent networks: per step, Dense layers on the observation, then a recurrent layer
    (``cell_type`` "rnn", "gru" or "lstm" of ``recurrent_units``), then the heads.

    The Dense layers and heads are initialised as in :func:`build_feed_forward`; the recurrent
    layer keeps Keras's defaults (orthogonal recurrent weights). With ``shared``, the value head
    sits on the policy's recurrent layer, and both networks carry the same memory.
    """
    from dexterity_nb.common.quiet_import import keras
    from keras import ops

    from dexterity_nb.models.layers import ResettingCell

    if len(getattr(observation_space, "shape", ()) or ()) == 0:
        raise TypeError(f"Recurrent builders take Box observations; got {observation_space}. "
                        "Wrap the env with gymnasium.wrappers (e.g. FlattenObservation) first.")
    hidden_units = _check_hidden_units(hidden_units)
    (recurrent_units,) = _check_hidden_units((recurrent_units,))
    observation_size = int(np.prod(observation_space.shape))
    observations = keras.Input((None, *observation_space.shape), name="observations")
    resets = keras.Input((None,), name="resets")

    def core(prefix):
        """Layers of one network, and the input of its state: steps (B, L, ...) -> flat (B·L, units)."""
        state = keras.Input((recurrent_units * ResettingCell(cell_type, 1).state_vectors,), name=f"{prefix}_state")
        features = observations
        if len(observation_space.shape) > 1:  # images and the like: one flat vector per step
            features = keras.layers.Reshape((-1, observation_size), name=f"{prefix}_flatten")(observations)
        for index, units in enumerate(hidden_units):
            features = keras.layers.Dense(units, activation=activation, kernel_initializer=keras.initializers.Orthogonal(2**0.5),
                                          name=f"{prefix}_hidden_{index}")(features)
        features = ops.concatenate([features, ops.expand_dims(resets, -1)], axis=-1)
        sequence, final_state = keras.layers.RNN(ResettingCell(cell_type, recurrent_units), return_sequences=True,
                                                 return_state=True, name=f"{prefix}_{cell_type}")(features, initial_state=[state])
        return state, ops.reshape(sequence, (-1, recurrent_units)), final_state

    policy_state, policy_features, policy_final = core("shared" if shared else "policy")
    value_state, value_features, value_final = (policy_state, policy_features, policy_final) if shared else core("value")
    value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value")(value_features)
    policy_model = keras.Model([observations, resets, policy_state], [*distribution.build_heads(policy_features), policy_final],
                               name="policy")
    value_model = keras.Model([observations, resets, value_state], [value, value_final], name="value")
    return policy_model, value_model


def _register_recurrent(name, hidden_units, recurrent_units, activation):
    for cell_type in RECURRENT_MODEL_TYPES:
        def build(observation_space, distribution, shared, hidden_units=hidden_units, recurrent_units=recurrent_units,
                  _cell_type=cell_type):
            return build_recurrent(observation_space, distribution, shared, _cell_type, hidden_units, recurrent_units,
                                   activation)

        build.__name__ = f"build_{name}_{cell_type}"
        build.__doc__ = f"``get_model_builder({name!r}, {cell_type!r})``: see :func:`build_recurrent`."
        build.checks_hidden_units = True
        register_model_builder(name, cell_type)(build)


_register_recurrent("simple", (64,), 64, "tanh")
_register_recurrent("wide", (256,), 256, "tanh")
_register_recurrent("deep", (64, 64), 64, "relu")
