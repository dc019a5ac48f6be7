"""Rebuilding what a saved agent's description names: from this process's registries, and only there.

This module is where a file's words meet code, so it is short and does one thing. Each name in
the description (``checkpoint_schema`` has already checked its type) is looked up in a registry
the package and the user filled in this process: ``TRANSFORMERS``, ``DISTRIBUTIONS``,
``GATHERERS``, ``MODEL_BUILDERS``, and gymnasium's own registry for the env id (never an id with
``:``, which would make gymnasium import a module). Nothing here imports a module a file names. A
name that is not registered, or a thing a file cannot hold (an env made from an instance, a
custom ``lr_schedule`` function), is a :class:`CheckpointError` that says what to register or
which argument of ``PPOAgent.load`` to pass.

The registered classes are then called with the file's JSON values as arguments: registering a
class is trusting it with any such values.
"""

from __future__ import annotations

from dexterity_nb.agent.checkpoint_schema import CheckpointError, json_or_none
from dexterity_nb.common.registry import registered_name, same_definition

__all__ = ["hyperparameters_for", "model_builder_for", "gatherer_for", "env_for", "distribution_class_for",
           "distribution_for", "names_from_import_paths"]


def hyperparameters_for(path, saved, lr_schedule):
    """The saved hyperparameters, with the caller's ``lr_schedule`` (required for a "custom" one)."""
    hyperparameters = dict(saved)
    if lr_schedule is not None:
        hyperparameters["lr_schedule"] = lr_schedule
    elif saved["lr_schedule"] == "custom":
        raise CheckpointError(
            f"{path} was saved with a custom lr_schedule function, which a file cannot hold; pass it: "
            "PPOAgent.load(path, lr_schedule=your_function)."
        )
    return hyperparameters


def model_builder_for(path, config):
    """The registered builder ``(model, model_type)`` with the saved options."""
    from dexterity_nb.models import MODEL_BUILDERS, get_model_builder

    if config is None:
        raise CheckpointError(
            f"{path} was saved with a model builder that was not made by get_model_builder (or had options that are "
            "not JSON), so the file cannot say how to build its networks; it cannot be loaded."
        )
    options = dict(config)
    name, model_type, shared = options.pop("model"), options.pop("model_type"), options.pop("shared")
    if (name, model_type) not in MODEL_BUILDERS:
        raise CheckpointError(
            f"{path} names the model builder ({name!r}, {model_type!r}) (field `model_builder`), which is not registered "
            f"here; loading finds builders only in the registry, never by importing. Register its function before "
            f"loading: @register_model_builder({name!r}, {model_type!r}) (from dexterity_nb.models)."
        )
    try:
        return get_model_builder(name, model_type, shared, **options)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: the model builder ({name!r}, {model_type!r}) refuses the saved options "
                              f"{_short(options)} ({error}).") from error


def gatherer_for(path, name, given):
    """The caller's gatherer class if given, else the registered one of that name."""
    from dexterity_nb.agent.gather import GATHERERS, check_gatherer_class

    if given is not None:
        return check_gatherer_class(given)
    if name not in GATHERERS:
        code = _identifier(name, "YourGatherer")
        raise CheckpointError(
            f"{path} names the gatherer {name!r} (field `gatherer`), which is not registered here; loading finds "
            f"classes only in the registries, never by importing. Register it before loading: register_gatherer({code}) "
            f"(from dexterity_nb.agent.gather), or pass it: PPOAgent.load(path, gatherer={code})."
        )
    return GATHERERS[name]


def intrinsic_for(path, spec):
    """The saved intrinsic reward (curiosity), rebuilt from its registered name and config; ``None`` without one."""
    from dexterity_nb.agent.curiosity import INTRINSIC_REWARDS

    if spec is None:
        return None
    code = _identifier(spec["class"], "YourIntrinsicReward")
    return _instance_from(path, INTRINSIC_REWARDS, spec, "intrinsic reward", "intrinsic",
                          f"register_intrinsic_reward({code}) (from dexterity_nb.agent.curiosity).")


def env_for(path, description, env):
    """The caller's env (with the saved transformers), or the env rebuilt from its registered id."""
    import gymnasium

    from dexterity_nb.common.wrappers import TransformedEnv, make_env

    saved = description["transformers"]
    recipe = description["env"]
    mask_velocity = recipe is not None and recipe.get("mask_velocity", False)  # absent in older files: False
    if env is not None:
        env = env if isinstance(env, TransformedEnv) else make_env(env)
        _check_same_transformers(path, saved, env)
        if recipe is not None:
            _check_same_masking(path, mask_velocity, env)
        return env
    masking = ", mask_velocity=True" if mask_velocity else ""
    passing = f"pass the env: PPOAgent.load(path, env=make_env(...{masking}, transformers={_describe_transformers(saved)}))"
    if recipe is None:
        raise CheckpointError(f"{path} was made from an env instance or function, which a file cannot hold (field `env` "
                              f"is null); {passing}.")
    _check_env_id(path, recipe["id"], passing)
    transformers = [_transformer_from(path, index, spec) for index, spec in enumerate(saved)]
    try:
        return make_env(recipe["id"], transformers=transformers, mask_velocity=mask_velocity, **recipe["kwargs"])
    except (ValueError, TypeError, gymnasium.error.Error) as error:
        raise CheckpointError(f"{path}: the env {recipe['id']!r} cannot be made with the saved arguments "
                              f"{_short(recipe['kwargs'])}{masking} ({error}); {passing}.") from error


def _check_same_masking(path, mask_velocity, env):
    """The env passed must show the observations the agent was trained on: with or without velocities."""
    from dexterity_nb.common.wrappers import masks_velocity

    if masks_velocity(env) != mask_velocity:
        saved, given = ("without", "with") if mask_velocity else ("with", "without")
        raise CheckpointError(
            f"{path} was saved on an env {saved} velocities in its observations (field `env.mask_velocity` is "
            f"{str(mask_velocity).lower()}), but the env passed is {given} them. Make it as the agent was trained: "
            f"make_env(..., mask_velocity={mask_velocity})."
        )


def _check_env_id(path, env_id, passing):
    """Rebuild only envs gymnasium already knows here: ``module:Env-v0`` would make gymnasium import ``module``."""
    import gymnasium

    if ":" in env_id:
        raise CheckpointError(
            f"{path} names the env {env_id!r} (field `env.id`), which would make gymnasium import the module "
            f"{env_id.partition(':')[0]!r}; a file is never a reason to import a module. If you trust that module, "
            f"import it yourself and {passing}."
        )
    if env_id not in gymnasium.registry:
        raise CheckpointError(
            f"{path} names the env {env_id!r} (field `env.id`), which is not registered with gymnasium here. Import the "
            f"package that registers it, or {passing}."
        )


def _transformer_from(path, index, spec):
    from dexterity_nb.common.transformers import TRANSFORMERS

    code = _identifier(spec["class"], "YourTransformer")
    return _instance_from(path, TRANSFORMERS, spec, "transformer", f"transformers[{index}]",
                          f"register_transformer({code}) (from dexterity_nb.common.transformers), or pass an env that "
                          f"has it: PPOAgent.load(path, env=make_env(..., transformers={_describe_transformers([spec])})).")


def _instance_from(path, registry, spec, kind, field, how_to_register):
    """``registry[spec["class"]](**spec["config"])``; a name not registered here, or a refused config, is a CheckpointError."""
    name = spec["class"]
    if name not in registry:
        raise CheckpointError(
            f"{path} names the {kind} {name!r} (field `{field}.class`), which is not registered here; loading finds "
            f"classes only in the registries, never by importing. Register it before loading: {how_to_register}"
        )
    try:
        return registry[name](**spec["config"])
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: the {kind} {name!r} refuses its saved config {_short(spec['config'])} "
                              f"(field `{field}.config`: {error}).") from error


def _check_same_transformers(path, saved, env):
    """The env passed must have the saved transformers, in order: the saved statistics are theirs."""
    given = [{"class": _saved_name_of(type(transformer)), "config": json_or_none(transformer.config())}
             for transformer in env.transformers]
    if len(given) != len(saved) or not all(map(_same_transformer, saved, given, env.transformers)):
        raise CheckpointError(
            f"{path} was saved with the transformers {_describe_transformers(saved)}, but the env passed has "
            f"{_describe_transformers(given)}; the saved normalisation statistics belong to the saved ones. Make the "
            f"env with the same transformers, in order: make_env(..., transformers={_describe_transformers(saved)})."
        )


def _saved_name_of(cls) -> str:
    from dexterity_nb.common.transformers import TRANSFORMERS

    return registered_name(TRANSFORMERS, cls, preferred=cls.__name__) or cls.__name__


def _same_transformer(saved, given, transformer) -> bool:
    """Same config, and the same class: by name, or by what the saved name is registered for (an alias)."""
    from dexterity_nb.common.transformers import TRANSFORMERS

    registered = TRANSFORMERS.get(saved["class"])
    same_class = saved["class"] == given["class"] or (registered is not None and same_definition(registered, type(transformer)))
    return same_class and saved["config"] == given["config"]


def distribution_class_for(path, spec):
    """The registered distribution class the description names (looked up before the env is made)."""
    from dexterity_nb.common.policies import DISTRIBUTIONS

    name = spec["class"]
    if name not in DISTRIBUTIONS:
        raise CheckpointError(
            f"{path} names the distribution {name!r} (field `distribution.class`), which is not registered here; loading "
            f"finds classes only in the registries, never by importing. Register it before loading: "
            f"register_distribution(YourDistribution) (from dexterity_nb.common.policies), for the Distribution "
            f"subclass whose `name` is {name!r}."
        )
    return DISTRIBUTIONS[name]


def distribution_for(path, distribution_class, spec, action_space):
    """That class for the env's action space, with the saved config."""
    config = {key: value for key, value in spec["config"].items() if key != "name"}
    try:
        return distribution_class(action_space, **config)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: the distribution {spec['class']!r} cannot be made for {action_space} with the saved "
                              f"config {_short(config)} ({error}).") from error


def names_from_import_paths(description):
    """Format 1 named classes by import path ("module:Qualname"). Each becomes the name its class is
    registered under here, matched by module and qualname: nothing is imported."""
    from dexterity_nb.agent.gather import GATHERERS
    from dexterity_nb.common.policies import DISTRIBUTIONS
    from dexterity_nb.common.transformers import TRANSFORMERS

    def name_of(registry, import_path):
        module, _, qualname = import_path.partition(":")
        matches = [name for name, cls in registry.items() if (cls.__module__, cls.__qualname__) == (module, qualname)]
        if not matches:
            return import_path  # registered under no name: the error asks to register the class
        class_name = qualname.rpartition(".")[2]
        return class_name if class_name in matches else matches[0]

    for spec in description["transformers"]:
        spec["class"] = name_of(TRANSFORMERS, spec["class"])
    description["distribution"]["class"] = name_of(DISTRIBUTIONS, description["distribution"]["class"])
    description["distribution"]["config"].pop("name", None)
    description["gatherer"] = name_of(GATHERERS, description["gatherer"])


# ------------------------------------------------------------------ messages
def _identifier(name, placeholder):
    """``name`` for a fix written as code, if it is a plain identifier; else ``placeholder`` (names come from the file)."""
    return name if name.isidentifier() else placeholder


def _describe_transformers(specs) -> str:
    def one(spec):
        config = spec["config"] if isinstance(spec["config"], dict) else {}
        arguments = ", ".join(f"{key}={_short(value, 40)}" for key, value in config.items())
        return f"{_identifier(spec['class'], repr(spec['class']))}({arguments})"

    return "[" + ", ".join(one(spec) for spec in specs) + "]"


def _short(value, limit=120) -> str:
    """A file's value, quoted for a message and cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
