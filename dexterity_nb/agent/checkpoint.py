"""Saving and loading agents: one file, written atomically, read completely before use.

The file is a NumPy ``.npz`` archive (a zip) holding a JSON description (hyperparameters, how to
rebuild the env, the networks and the gatherer, the history and the random streams) and the
arrays (network weights, optimizer state, transformer statistics). ``allow_pickle`` stays off,
so loading a file never runs code from it.

Saving writes ``<path>.tmp-<pid>`` and renames it over ``path`` (``os.replace`` is atomic): an
interrupted save leaves the previous checkpoint intact. Loading checks the whole file first and
raises :class:`CheckpointError` on anything missing, so there is never a half-loaded agent.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_agent", "load_agent", "CheckpointError", "FORMAT"]

FORMAT = "dexterity_nb-agent-1"


class CheckpointError(ValueError):
    """The file is not a saved dexterity_nb agent, is truncated, or cannot be rebuilt here."""


def _import_path(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(path: str, what: str, fix: str):
    module_name, _, qualname = path.partition(":")
    try:
        target = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        return target
    except (ImportError, AttributeError) as error:
        raise CheckpointError(f"The saved {what} {path!r} cannot be imported here ({error}). {fix}") from error


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_agent(agent, path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; save the agent to a file inside it, e.g. {path / 'agent.npz'}.")
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # np.savez would add it anyway; make it explicit
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for index, variable in enumerate(agent.policy.weights):
        arrays[f"policy/{index}"] = np.asarray(variable)
    for index, variable in enumerate(agent.value.weights):
        arrays[f"value/{index}"] = np.asarray(variable)
    for index, variable in enumerate(agent.optimizer.variables):
        arrays[f"optimizer/{index}"] = np.asarray(variable)
    transformers = []
    for index, transformer in enumerate(agent.transformers):
        for name, statistics in transformer.running_statistics().items():
            for key, value in statistics.get_state().items():
                arrays[f"transformer/{index}/{name}/{key}"] = value
        transformers.append({"class": _import_path(type(transformer)), "config": transformer.config()})
    description = {
        "format": FORMAT,
        "hyperparameters": agent.hyperparameters(),
        "model_builder": agent.model_builder.config() if hasattr(agent.model_builder, "config") else None,
        "distribution": {"class": _import_path(type(agent.distribution)), "config": agent.distribution.config()},
        "env": agent.env.recipe,
        "transformers": transformers,
        "gatherer": _import_path(agent.gatherer_class),
        "cycle": agent.cycle,
        "history": agent.history,
        "random_streams": {
            "workers": agent.rollout.rng_states(),
            "shuffle": agent._shuffle_rng.bit_generator.state,
            "act": agent._act_rng.bit_generator.state,
        },
        "counts": {"policy": len(agent.policy.weights), "value": len(agent.value.weights), "optimizer": len(agent.optimizer.variables)},
    }
    arrays["description"] = np.array(json.dumps(_jsonable(description)))
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


def _read(path):
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.npz"))
        if len(candidates) != 1:
            raise CheckpointError(f"{path} is a folder holding {len(candidates)} .npz files; name the agent file.")
        path = candidates[0]
    if not path.exists() and Path(str(path) + ".npz").exists():
        path = Path(str(path) + ".npz")
    if not path.exists():
        raise CheckpointError(f"There is no saved agent at {path}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        description = json.loads(str(arrays.pop("description")))
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent, or it is truncated ({error}).") from error
    if description.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a saved dexterity_nb agent (format {description.get('format')!r}, expected {FORMAT!r}).")
    counts = description["counts"]
    for group in ("policy", "value", "optimizer"):
        missing = [index for index in range(counts[group]) if f"{group}/{index}" not in arrays]
        if missing:
            raise CheckpointError(f"{path} is truncated: {group} arrays {missing} are missing.")
    return path, description, arrays


def load_agent(agent_class, path, env=None, gatherer=None, verbose=False):
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    path, description, arrays = _read(path)
    builder_config = dict(description["model_builder"] or {})
    if not builder_config:
        raise CheckpointError(f"{path} was saved with an unregistered model builder; it cannot be rebuilt.")
    try:
        builder = get_model_builder(
            builder_config.pop("model"), builder_config.pop("model_type"), builder_config.pop("shared"), **builder_config
        )
    except ValueError as error:
        raise CheckpointError(f"{error} Register the builder before loading {path}.") from error
    transformers = []
    for spec in description["transformers"]:
        cls = _resolve(spec["class"], "transformer", "Import or define it before loading.")
        transformers.append(cls(**spec["config"]))
    if env is None:
        recipe = description["env"]
        if recipe is None:
            raise CheckpointError(f"{path} was made from an env instance; pass it: PPOAgent.load(path, env=make_env(...)).")
        env = make_env(recipe["id"], transformers=transformers, **recipe["kwargs"])
    if gatherer is None:
        gatherer = _resolve(
            description["gatherer"], "gatherer",
            "Define the class, then pass it: PPOAgent.load(path, gatherer=YourGatherer).",
        )
    distribution_class = _resolve(description["distribution"]["class"], "distribution", "Import it before loading.")
    distribution_config = {k: v for k, v in description["distribution"]["config"].items() if k != "name"}
    distribution = distribution_class(env.action_space, **distribution_config)

    agent = agent_class(builder, env, distribution=distribution, verbose=verbose, **description["hyperparameters"])
    weights_of = lambda group, count: [arrays[f"{group}/{index}"] for index in range(count)]  # noqa: E731
    try:
        agent.policy.set_weights(weights_of("policy", len(agent.policy.weights)))
        agent.value.set_weights(weights_of("value", len(agent.value.weights)))
        optimizer_values = weights_of("optimizer", len(agent.optimizer.variables))
        for variable, value in zip(agent.optimizer.variables, optimizer_values):
            variable.assign(value)
        for index, transformer in enumerate(agent.transformers):
            for name, statistics in transformer.running_statistics().items():
                prefix = f"transformer/{index}/{name}/"
                statistics.set_state({key: arrays[prefix + key] for key in ("count", "mean", "var")})
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} does not match the networks built from its description ({error}).") from error
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
    return agent
