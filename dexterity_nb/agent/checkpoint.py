"""Saving and loading agents: one file, written atomically, checked completely before use.

The file is a NumPy ``.npz`` archive (a zip) holding a JSON description (hyperparameters, how to
rebuild the env, the networks and the gatherer, the history and the random streams; see
``checkpoint_schema``) and the arrays (network weights, optimizer state, transformer statistics).

**What loading trusts.** The file is data, never code. ``allow_pickle`` stays off, and classes are
named by *registered names*, which resolve only in the registries that the package and you filled
in this process: ``TRANSFORMERS`` (:func:`~dexterity_nb.common.transformers.register_transformer`),
``DISTRIBUTIONS`` (:func:`~dexterity_nb.common.policies.register_distribution`), ``GATHERERS``
(:func:`~dexterity_nb.agent.gather.register_gatherer`) and ``MODEL_BUILDERS``
(:func:`~dexterity_nb.models.register_model_builder`). The env is rebuilt only from an id that
gymnasium already has registered here, with JSON arguments. A name the registries do not hold is
a :class:`CheckpointError` that says what to register, or which object to pass to
``PPOAgent.load`` (``env=``, ``gatherer=``, ``lr_schedule=``); a file is never a reason to import a
module or to run code. The registered classes do run, with the file's JSON values as their
arguments: registering a class says you trust it with any such values. Files of the earlier
format 1, which named classes by import path, are read by matching each path against the
registered classes' modules and names; nothing is imported for them either.

**Nothing half-loaded.** Every field and array is checked before anything is built; the networks
are then built from the description, every array's shape is checked against them, and only then
is anything assigned. Any problem is a :class:`CheckpointError` naming the field.

**Atomic saving.** Saving writes ``<path>.tmp-<pid>``, flushes it to disk and renames it over
``path`` (``os.replace`` is atomic): an interrupted save leaves the previous checkpoint intact. A
save also removes the ``<name>.tmp-<pid>`` files that saves killed before they could clean up
left next to it (those whose process no longer runs on this machine).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dexterity_nb.agent import checkpoint_rebuild as rebuild
from dexterity_nb.agent.checkpoint_schema import (
    FORMAT,
    MAKE_ENV_PARAMETERS,
    STATISTICS_KEYS,
    CheckpointError,
    check_arrays,
    check_description,
    json_or_none,
    jsonable,
)
from dexterity_nb.common.registry import registered_name

__all__ = ["save_agent", "load_agent", "CheckpointError", "FORMAT"]

FORMAT_1 = "dexterity_nb-agent-1"  # named classes by import path; read by mapping those to registered names


# ------------------------------------------------------------------ saving
def save_agent(agent, path) -> Path:
    """Write ``agent`` to ``path`` (``.npz`` added if missing) atomically; return the path written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; save the agent to a file inside it, e.g. {path / 'agent.npz'}.")
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # np.savez would add it anyway; make it explicit
    arrays = _arrays_of(agent)
    arrays["description"] = np.array(json.dumps(_description_of(agent)))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def _arrays_of(agent) -> dict:
    arrays = {}
    for group, variables in (("policy", agent.policy.weights), ("value", agent.value.weights),
                             ("optimizer", agent.optimizer.variables)):
        for index, variable in enumerate(variables):
            arrays[f"{group}/{index}"] = np.asarray(variable)
    for index, transformer in enumerate(agent.transformers):  # the agent's statistics, over every worker's data
        for name, statistics in transformer.running_statistics().items():
            for key, value in statistics.get_state().items():
                arrays[f"transformer/{index}/{name}/{key}"] = value
    if agent.intrinsic is not None:  # curiosity: the bonus's learned state (reward/…) and V_i's (value/…)
        arrays.update({f"intrinsic/{name}": np.asarray(value) for name, value in agent._intrinsic_state().items()})
    return arrays


def _description_of(agent) -> dict:
    from dexterity_nb.agent.curiosity import INTRINSIC_REWARDS
    from dexterity_nb.agent.gather import GATHERERS
    from dexterity_nb.common.policies import DISTRIBUTIONS
    from dexterity_nb.common.transformers import TRANSFORMERS

    distribution = agent.distribution
    gatherer = agent.gatherer_class
    builder = agent.model_builder
    intrinsic = agent.intrinsic
    optional = {} if intrinsic is None else {"intrinsic": {
        "class": _name_to_save(INTRINSIC_REWARDS, type(intrinsic), type(intrinsic).__name__, "intrinsic reward",
                               f"register_intrinsic_reward({type(intrinsic).__name__}, name=...)"),
        "config": _json_config(intrinsic.config(), "intrinsic.config"),
    }}
    return jsonable({
        "format": FORMAT,
        "hyperparameters": agent.hyperparameters(),
        "model_builder": json_or_none(builder.config()) if hasattr(builder, "config") else None,
        "distribution": {
            "class": _name_to_save(DISTRIBUTIONS, type(distribution), distribution.name, "distribution",
                                   f"give {type(distribution).__name__} a `name` of its own and call "
                                   f"register_distribution({type(distribution).__name__})"),
            "config": _json_config({k: v for k, v in distribution.config().items() if k != "name"}, "distribution.config"),
        },
        "env": _env_recipe(agent.env.recipe),
        # The env's transformers are the recipe (their configs as given, e.g. discount=None for "the
        # agent's"); the agent's own copies hold the statistics, saved as arrays.
        "transformers": [
            {"class": _name_to_save(TRANSFORMERS, type(transformer), type(transformer).__name__, "transformer",
                                    f"register_transformer({type(transformer).__name__}, name=...)"),
             "config": _json_config(transformer.config(), f"transformers[{index}].config")}
            for index, transformer in enumerate(agent.env.transformers)
        ],
        "gatherer": _name_to_save(GATHERERS, gatherer, gatherer.__name__, "gatherer",
                                  f"register_gatherer({gatherer.__name__}, name=...)"),
        "cycle": agent.cycle,
        "history": agent.history,
        "random_streams": {
            "workers": agent.rollout.rng_states(),
            "shuffle": agent._shuffle_rng.bit_generator.state,
            "act": agent._act_rng.bit_generator.state,
        },
        "counts": {"policy": len(agent.policy.weights), "value": len(agent.value.weights),
                   "optimizer": len(agent.optimizer.variables)},
        **optional,
    })


def _name_to_save(registry, cls, default, kind, fix) -> str:
    """The registered name of ``cls``; ``default`` for an unregistered class (loading then asks for it).

    Refused: an unregistered class whose default name belongs to another registered class, since
    loading would silently build that other class.
    """
    name = registered_name(registry, cls, preferred=default)
    if name is not None:
        return name
    taken = registry.get(default)
    if taken is not None:
        raise CheckpointError(
            f"Cannot save the agent: its {kind} {cls.__qualname__} is not registered, and its name {default!r} is "
            f"registered for {taken.__module__}.{taken.__qualname__}, which loading would build instead. "
            f"Register yours under a name of its own, then save again: {fix}."
        )
    return default


def _env_recipe(recipe):
    """The env's recipe if loading may rebuild it from JSON; ``None`` (loading asks for env=) otherwise."""
    recipe = json_or_none(recipe)
    if not isinstance(recipe, dict) or any(key in recipe.get("kwargs", {}) for key in MAKE_ENV_PARAMETERS):
        return None
    return recipe


def _json_config(config, field):
    value = json_or_none(config)
    if not isinstance(value, dict):
        raise CheckpointError(
            f"Cannot save the agent: `{field}` is {config!r}; it must be a dict of JSON values (numbers, strings, "
            "booleans, None, lists, dicts), the constructor's arguments, so that loading can rebuild the object."
        )
    return value


def _remove_stale_temporaries(path):
    """Delete ``<name>.tmp-<pid>`` files left by saves that were killed: their process no longer runs."""
    prefix = f"{path.name}.tmp-"
    for candidate in path.parent.iterdir():
        pid = candidate.name[len(prefix):] if candidate.name.startswith(prefix) else ""
        if pid.isascii() and pid.isdigit() and int(pid) != os.getpid() and not _process_is_alive(int(pid)):
            try:
                if candidate.is_file():
                    candidate.unlink()
            except OSError:
                pass  # another save removed it, or it is not ours to remove: saving goes on


def _process_is_alive(pid) -> bool:
    if os.name != "posix":
        return True  # on Windows os.kill(pid, 0) would end the process: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no pid at all: leave the file alone
        return True
    return True


# ------------------------------------------------------------------ loading
def load_agent(agent_class, path, env=None, gatherer=None, lr_schedule=None, verbose=False):
    """Rebuild a saved agent; see ``PPOAgent.load`` and this module's docstring for what is trusted."""
    if not (lr_schedule is None or lr_schedule == "linear" or callable(lr_schedule)):
        raise ValueError(f'`lr_schedule` must be None (the saved one), "linear" or a function progress -> factor; '
                         f'got {lr_schedule!r}.')
    path, description, arrays = _read(path)
    try:
        check_description(description)
        check_arrays(description, arrays)
    except CheckpointError as error:
        raise CheckpointError(f"{path} is damaged or was not written by dexterity_nb: {error}.") from None
    if description["format"] == FORMAT_1:
        rebuild.names_from_import_paths(description)
    # Everything the description names, from the registries only (see checkpoint_rebuild).
    hyperparameters = rebuild.hyperparameters_for(path, description["hyperparameters"], lr_schedule)
    builder = rebuild.model_builder_for(path, description["model_builder"])
    gatherer = rebuild.gatherer_for(path, description["gatherer"], gatherer)
    distribution_class = rebuild.distribution_class_for(path, description["distribution"])
    env = rebuild.env_for(path, description, env)
    distribution = rebuild.distribution_for(path, distribution_class, description["distribution"], env.action_space)
    intrinsic = rebuild.intrinsic_for(path, description.get("intrinsic"))
    try:
        agent = agent_class(builder, env, distribution=distribution, verbose=verbose, intrinsic=intrinsic, **hyperparameters)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: no agent can be built from its description ({error}).") from error
    _check_shapes(path, agent, description, arrays)
    _restore(agent, description, arrays, gatherer)
    if agent.intrinsic is not None:
        try:  # what only the intrinsic reward itself can judge (e.g. counts must be whole numbers ≥ 0)
            agent._set_intrinsic_state({name[len("intrinsic/"):]: value for name, value in arrays.items()
                                        if name.startswith("intrinsic/")})
        except (ValueError, TypeError, KeyError) as error:
            raise CheckpointError(f"{path}: its intrinsic reward's arrays do not fit {agent.intrinsic!r} ({error}).") from error
    return agent


def _read(path):
    path = _agent_file(Path(path))
    if not zipfile.is_zipfile(path):  # before np.load, whose answer to a non-zip file is to suggest pickle
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent, or it is truncated: it is not a zip archive, "
                              "as .npz files are.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError, KeyError, ValueError,
            NotImplementedError, RuntimeError) as error:  # what reading a damaged or foreign zip raises
        mentions_pickle = "pickle" in str(error).lower()  # never pass on NumPy's advice to allow pickles
        detail = "" if mentions_pickle else f" ({error})"
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent, or it is truncated{detail}.") from (
            None if mentions_pickle else error)
    text = arrays.pop("description", None)
    if not (isinstance(text, np.ndarray) and text.dtype.kind == "U" and text.shape == ()):
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent: it has no description (a string array `description`).")
    try:
        description = json.loads(str(text[()]))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path} is damaged or was not written by dexterity_nb: its description is not readable "
                              f"JSON ({error}).") from None
    found = description.get("format") if isinstance(description, dict) else None
    if found not in (FORMAT, FORMAT_1):
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent (format {repr(found)[:80]}, expected {FORMAT!r}).")
    return path, description, arrays


def _agent_file(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(path.glob("*.npz"))
        if len(candidates) != 1:
            raise CheckpointError(f"{path} is a folder holding {len(candidates)} .npz files; name the agent file.")
        path = candidates[0]
    if not path.exists() and Path(str(path) + ".npz").exists():
        path = Path(str(path) + ".npz")
    if not path.exists():
        raise CheckpointError(f"There is no saved agent at {path}.")
    return path


def _check_shapes(path, agent, description, arrays):
    """Every saved array fits the networks, optimizer and statistics built from the description."""
    counts = description["counts"]
    for group, variables in (("policy", agent.policy.weights), ("value", agent.value.weights),
                             ("optimizer", agent.optimizer.variables)):
        if counts[group] != len(variables):
            raise CheckpointError(f"{path} holds {counts[group]} {group} arrays, but the {group} built from its description "
                                  f"has {len(variables)} variables.")
        for index, variable in enumerate(variables):
            array, needed = arrays[f"{group}/{index}"], "f" if "float" in str(variable.dtype) else "iu"
            if array.shape != tuple(variable.shape) or array.dtype.kind not in needed:
                raise CheckpointError(
                    f"{path}: the array {group}/{index} is {array.dtype} of shape {array.shape}, but the {group} built "
                    f"from its description needs {variable.dtype} of shape {tuple(variable.shape)}."
                )
    if agent.intrinsic is not None:  # the bonus's and V_i's arrays, all of them and of the built shapes
        built = {f"intrinsic/{name}": np.asarray(value) for name, value in agent._intrinsic_state().items()}
        saved = {name for name in arrays if name.startswith("intrinsic/")}
        if saved != set(built):
            raise CheckpointError(f"{path}: its intrinsic reward's arrays {sorted(saved)[:6]} are not the ones "
                                  f"{agent.intrinsic!r} keeps: {sorted(built)[:6]} (first six of each).")
        for name, value in built.items():
            if arrays[name].shape != value.shape:
                raise CheckpointError(f"{path}: the array {name} has shape {arrays[name].shape}, but "
                                      f"{agent.intrinsic!r} built from its description needs {value.shape}.")
    expected = set()
    for index, transformer in enumerate(agent.transformers):
        for name, statistics in transformer.running_statistics().items():
            prefix = f"transformer/{index}/{name}"
            expected.update(f"{prefix}/{key}" for key in STATISTICS_KEYS)
            if f"{prefix}/mean" not in arrays:
                raise CheckpointError(f"{path} lacks the statistics {prefix} of its transformer {type(transformer).__name__}.")
            if arrays[f"{prefix}/mean"].shape != statistics.shape:
                raise CheckpointError(f"{path}: the statistics {prefix} have shape {arrays[f'{prefix}/mean'].shape}, but the "
                                      f"env's observations need {statistics.shape}.")
    unexpected = sorted(name for name in arrays if name.startswith("transformer/") and name not in expected)
    if unexpected:
        raise CheckpointError(f"{path} holds statistics that none of its transformers keeps: {unexpected}.")


def _restore(agent, description, arrays, gatherer):
    agent.policy.set_weights([arrays[f"policy/{index}"] for index in range(len(agent.policy.weights))])
    agent.value.set_weights([arrays[f"value/{index}"] for index in range(len(agent.value.weights))])
    for index, variable in enumerate(agent.optimizer.variables):
        variable.assign(arrays[f"optimizer/{index}"])
    # The optimizer's variables include its learning rate: forget the values _sync_graph_settings
    # cached, or the first cycle would train with the saved rate while history reports its own.
    agent._graph_setting_values.clear()
    for index, transformer in enumerate(agent.transformers):
        for name, statistics in transformer.running_statistics().items():
            statistics.set_state({key: arrays[f"transformer/{index}/{name}/{key}"] for key in STATISTICS_KEYS})
    agent.assign_gatherer(gatherer)
    agent.cycle = description["cycle"]
    agent.history = description["history"]
    streams = description["random_streams"]
    # The saved streams are global workers 0, 1, …; with MPI each rank restores its own workers' (a file
    # saved under MPI holds rank 0's only, so the other ranks keep their workers' fresh streams).
    agent.rollout.set_rng_states(streams["workers"][agent._first_worker:agent._first_worker + agent._local_workers])
    agent._shuffle_rng.bit_generator.state = streams["shuffle"]
    agent._act_rng.bit_generator.state = streams["act"]
    agent._policy_forward_refresh()
