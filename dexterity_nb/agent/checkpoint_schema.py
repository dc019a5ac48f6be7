"""What a saved agent's file must hold: checks on its JSON description and its arrays.

Pure functions on plain data, run before anything is built. Each failure is a
:class:`CheckpointError` that names the field (``hyperparameters.horizon``, ``history[2].frames``,
``random_streams.act``, the array ``policy/0``) and what came, so a damaged or hand-edited file
never gets as far as a ``KeyError`` deep inside the loading code, nor into a trained agent.

The description (format ``dexterity_nb-agent-2``) is a dict with exactly these keys::

    format           "dexterity_nb-agent-2"
    hyperparameters  PPOAgent.hyperparameters(); lr_schedule is None, "linear" or "custom"; chunk_length (None for
                     feed-forward agents) is absent in files written before recurrent agents
    model_builder    {"model", "model_type", "shared", **options} of a registered builder, or null
    distribution     {"class": registered name, "config": constructor arguments}
    env              {"id": gymnasium id, "kwargs": gymnasium.make arguments, "mask_velocity": bool}, or
                     null; "mask_velocity" is make_env's (files written before it existed lack it: False)
    transformers     [{"class": registered name, "config": constructor arguments}, ...] of the env
    gatherer         registered name
    cycle            completed cycles, = len(history)
    history          one dict per cycle, "cycle" running 1, 2, … n
    random_streams   {"workers": [PCG64 state, ...], "shuffle": PCG64 state, "act": PCG64 state}
    counts           {"policy", "value", "optimizer"}: how many arrays of each
    intrinsic        only with curiosity: {"class": registered name, "config": constructor arguments}

and the arrays are ``policy/<i>``, ``value/<i>``, ``optimizer/<i>``,
``transformer/<index>/<statistic>/<count|mean|var>`` and, with curiosity, ``intrinsic/<name>`` (the
intrinsic reward's ``get_state()`` under ``reward/``, its value network's under ``value/``).
"""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["CheckpointError", "FORMAT", "HYPERPARAMETERS", "STATISTICS_KEYS", "check_description", "check_arrays",
           "jsonable", "json_or_none"]

FORMAT = "dexterity_nb-agent-2"

DESCRIPTION_KEYS = ("format", "hyperparameters", "model_builder", "distribution", "env", "transformers", "gatherer",
                    "cycle", "history", "random_streams", "counts")
WEIGHT_GROUPS = ("policy", "value", "optimizer")
STATISTICS_KEYS = ("count", "mean", "var")
MAKE_ENV_PARAMETERS = ("env", "transformers", "seed", "mask_velocity")  # make_env's own: never gymnasium kwargs
HISTORY_INTS = ("cycle", "episodes", "total_episodes", "frames", "updates")
HISTORY_NUMBERS = ("mean_return", "mean_length", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
                   "learning_rate", "gather_seconds", "optimize_seconds", "seconds", "steps_per_second")


class CheckpointError(ValueError):
    """The file is not a saved dexterity_nb agent, is damaged, or names something not registered here."""


def _fail(field, problem):
    raise CheckpointError(f"`{field}` {problem}")


def _came(value, limit=60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expect_dict(field, value, keys=None) -> dict:
    if not isinstance(value, dict):
        _fail(field, f"must be a dict, got {_came(value)}")
    if keys is not None and set(value) != set(keys):
        missing = [key for key in keys if key not in value]
        unexpected = [key for key in value if key not in keys]
        _fail(field, f"must hold exactly the keys {list(keys)}; missing {missing}, unexpected {_came(unexpected)}")
    return value


def _expect_list(field, value) -> list:
    if not isinstance(value, list):
        _fail(field, f"must be a list, got {_came(value)}")
    return value


def _expect_name(field, value):
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        _fail(field, f"must be a registered name (a string of 1 to 200 characters), got {_came(value)}")


def _expect_int(field, value, minimum=None, below=None):
    if not _is_int(value) or (minimum is not None and value < minimum) or (below is not None and value >= below):
        bounds = "" if minimum is None else f" ≥ {minimum}" + ("" if below is None else f" and < {below}")
        _fail(field, f"must be an int{bounds}, got {_came(value)}")


def _expect_number(field, value, allow_nan=False):
    if not _is_number(value) or math.isinf(value) or (math.isnan(value) and not allow_nan):
        _fail(field, f"must be a finite number{' or NaN' if allow_nan else ''}, got {_came(value)}")


# ------------------------------------------------------------------ hyperparameters
def _positive_int(field, value):
    _expect_int(field, value, minimum=1)


def _finite_or_none(field, value):
    if value is not None:
        _expect_number(field, value)


def _seed(field, value):
    if value is not None:
        _expect_int(field, value, minimum=0)


def _positive_int_or_none(field, value):
    if value is not None:
        _expect_int(field, value, minimum=1)


def _schedule(field, value):
    if value not in (None, "linear", "custom"):
        _fail(field, f'must be null, "linear" or "custom" (a function, which the file cannot hold), got {_came(value)}')


# The keys PPOAgent.hyperparameters() returns, each with its check (ranges are PPOAgent's to check).
HYPERPARAMETERS = {
    "horizon": _positive_int, "workers": _positive_int, "learning_rate": _expect_number, "discount": _expect_number,
    "lam": _expect_number, "clip": _expect_number, "c_entropy": _expect_number, "c_value": _expect_number,
    "gradient_clipping": _finite_or_none, "lr_schedule": _schedule, "seed": _seed, "value_clip": _finite_or_none,
    "chunk_length": _positive_int_or_none, "behaviour_weight_bound": _expect_number,
}
# Files written before recurrent agents lack chunk_length (feed-forward: None), and files written before the
# decoupled objective lack behaviour_weight_bound (they load with the default, 1).
OPTIONAL_HYPERPARAMETERS = ("chunk_length", "behaviour_weight_bound")


# ------------------------------------------------------------------ the description
def check_description(description: dict) -> None:
    """Check every field of a parsed description (its ``format`` already checked); raise on the first bad one."""
    keys = DESCRIPTION_KEYS + (("intrinsic",) if isinstance(description, dict) and "intrinsic" in description else ())
    _expect_dict("description", description, keys)  # "intrinsic" only for an agent with curiosity
    saved = _expect_dict("hyperparameters", description["hyperparameters"])
    keys = tuple(name for name in HYPERPARAMETERS if name not in OPTIONAL_HYPERPARAMETERS or name in saved)
    hyperparameters = _expect_dict("hyperparameters", saved, keys)
    for name in keys:
        HYPERPARAMETERS[name](f"hyperparameters.{name}", hyperparameters[name])
    _check_model_builder(description["model_builder"])
    _check_named_spec("distribution", description["distribution"])
    _check_env_recipe(description["env"])
    for index, spec in enumerate(_expect_list("transformers", description["transformers"])):
        _check_named_spec(f"transformers[{index}]", spec)
    _expect_name("gatherer", description["gatherer"])
    if "intrinsic" in description:
        _check_named_spec("intrinsic", description["intrinsic"])
    _check_history(description["history"])
    _expect_int("cycle", description["cycle"], minimum=0)
    if description["cycle"] != len(description["history"]):
        _fail("cycle", f"is {description['cycle']}, but `history` holds {len(description['history'])} cycles")
    _check_random_streams(description["random_streams"], hyperparameters["workers"])
    counts = _expect_dict("counts", description["counts"], WEIGHT_GROUPS)
    for group in WEIGHT_GROUPS:
        _expect_int(f"counts.{group}", counts[group], minimum=0)


def _check_model_builder(config):
    if config is None:
        return  # saved from an unregistered builder: loading says it cannot be rebuilt
    _expect_dict("model_builder", config)
    for key in ("model", "model_type", "shared"):
        if key not in config:
            _fail("model_builder", f"must hold the key {key!r}; it holds {_came(list(config))}")
    _expect_name("model_builder.model", config["model"])
    _expect_name("model_builder.model_type", config["model_type"])
    if not isinstance(config["shared"], bool):
        _fail("model_builder.shared", f"must be true or false, got {_came(config['shared'])}")


def _check_named_spec(field, spec):
    _expect_dict(field, spec, ("class", "config"))
    _expect_name(f"{field}.class", spec["class"])
    _expect_dict(f"{field}.config", spec["config"])


def _check_env_recipe(recipe):
    if recipe is None:
        return  # made from an instance or a function: loading asks for env=
    keys = ("id", "kwargs", "mask_velocity") if "mask_velocity" in _expect_dict("env", recipe) else ("id", "kwargs")
    _expect_dict("env", recipe, keys)  # files written before mask_velocity existed lack it
    _expect_name("env.id", recipe["id"])
    if not isinstance(recipe.get("mask_velocity", False), bool):
        _fail("env.mask_velocity", f"must be true or false, got {_came(recipe['mask_velocity'])}")
    kwargs = _expect_dict("env.kwargs", recipe["kwargs"])
    clashing = [key for key in MAKE_ENV_PARAMETERS if key in kwargs]
    if clashing:
        _fail("env.kwargs", f"holds {clashing}, which are make_env's own parameters, not gymnasium's")


def _check_history(history):
    for index, entry in enumerate(_expect_list("history", history)):
        field = f"history[{index}]"
        _expect_dict(field, entry)
        missing = [key for key in (*HISTORY_INTS, *HISTORY_NUMBERS, "episode_returns", "episode_lengths") if key not in entry]
        if missing:
            _fail(field, f"lacks the keys {missing}")
        for key, value in entry.items():
            _check_history_value(f"{field}.{key}", key, value)
        if entry["cycle"] != index + 1:
            _fail(f"{field}.cycle", f"must be {index + 1} (cycles run 1, 2, … n), got {_came(entry['cycle'])}")


def _check_history_value(field, key, value):
    if key in HISTORY_INTS:
        _expect_int(field, value, minimum=0)
    elif key == "episode_lengths":
        for position, length in enumerate(_expect_list(field, value)):
            _expect_int(f"{field}[{position}]", length, minimum=0)
    elif key == "episode_returns" or isinstance(value, list):  # or a per-episode list added later
        for position, item in enumerate(_expect_list(field, value)):
            _expect_number(f"{field}[{position}]", item)
    else:  # a metric: NaN where it had no value (mean_return of a cycle without finished episodes)
        _expect_number(field, value, allow_nan=True)


def _check_random_streams(streams, workers):
    _expect_dict("random_streams", streams, ("workers", "shuffle", "act"))
    states = _expect_list("random_streams.workers", streams["workers"])
    if not 1 <= len(states) <= workers:
        _fail("random_streams.workers", f"must hold 1 to {workers} (hyperparameters.workers) states, got {len(states)}")
    for index, state in enumerate(states):
        check_random_state(f"random_streams.workers[{index}]", state)
    check_random_state("random_streams.shuffle", streams["shuffle"])
    check_random_state("random_streams.act", streams["act"])


def check_random_state(field, state):
    """A ``numpy.random.PCG64`` state dict (``Generator.bit_generator.state``) that NumPy accepts."""
    _expect_dict(field, state, ("bit_generator", "state", "has_uint32", "uinteger"))
    if state["bit_generator"] != "PCG64":
        _fail(f"{field}.bit_generator", f'must be "PCG64", got {_came(state["bit_generator"])}')
    inner = _expect_dict(f"{field}.state", state["state"], ("state", "inc"))
    for key in ("state", "inc"):
        _expect_int(f"{field}.state.{key}", inner[key], minimum=0, below=2**128)
    _expect_int(f"{field}.has_uint32", state["has_uint32"], minimum=0, below=2)
    _expect_int(f"{field}.uinteger", state["uinteger"], minimum=0, below=2**32)
    try:
        np.random.PCG64().state = state  # a throwaway generator: NumPy's own check, before any agent exists
    except (ValueError, TypeError, OverflowError) as error:
        _fail(field, f"is not a PCG64 state NumPy accepts ({error})")


# ------------------------------------------------------------------ the arrays
def check_arrays(description: dict, arrays: dict) -> None:
    """Every array the description needs is there, numeric and finite; statistics have count, var ≥ 0.

    Shapes are checked later, against the networks built from the description.
    """
    counts = description["counts"]
    if sum(counts.values()) > len(arrays):
        _fail("counts", f"announces {sum(counts.values())} weight arrays, but the file holds {len(arrays)} arrays in all")
    for group in WEIGHT_GROUPS:
        missing = [f"{group}/{index}" for index in range(counts[group]) if f"{group}/{index}" not in arrays]
        if missing:
            _fail(missing[0], f"is missing (the file is truncated or was edited); {len(missing)} {group} arrays are")
    statistics = {}
    for name, value in arrays.items():
        kind = _array_kind(name, counts, len(description["transformers"]), "intrinsic" in description)
        if kind is None:
            _fail(name, "is an array no saved agent holds")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
            _fail(name, f"must be an array of numbers, got {_came(getattr(value, 'dtype', value))}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            _fail(name, "holds NaN or infinite values; a trained agent's weights and statistics are finite")
        if kind == "statistics" or (kind == "intrinsic" and _is_intrinsic_statistic(name)):
            statistics.setdefault(name.rpartition("/")[0], {})[name.rpartition("/")[2]] = value
    for prefix, state in statistics.items():
        _check_statistics(prefix, state)


def _array_kind(name, counts, transformer_count, curious=False):
    """"weights", "statistics", "intrinsic", or None for a name no saved agent writes."""
    parts = name.split("/")
    if curious and len(parts) >= 3 and parts[0] == "intrinsic" and parts[1] in ("reward", "value") and all(parts[2:]):
        return "intrinsic"  # its names and shapes are checked against the intrinsic reward once it is built
    if len(parts) == 2 and parts[0] in WEIGHT_GROUPS and _index_below(parts[1], counts[parts[0]]):
        return "weights"
    if (len(parts) == 4 and parts[0] == "transformer" and _index_below(parts[1], transformer_count) and parts[2]
            and parts[3] in STATISTICS_KEYS):
        return "statistics"
    return None


def _is_intrinsic_statistic(name) -> bool:
    """``intrinsic/reward/statistics/<name>/<count|mean|var>``: the intrinsic reward's running statistics."""
    parts = name.split("/")
    return len(parts) == 5 and parts[2] == "statistics" and parts[4] in STATISTICS_KEYS


def _index_below(text, limit) -> bool:
    return text.isascii() and text.isdigit() and str(int(text)) == text and int(text) < limit


def _check_statistics(prefix, state):
    missing = [key for key in STATISTICS_KEYS if key not in state]
    if missing:
        _fail(f"{prefix}/{missing[0]}", "is missing; running statistics are saved as count, mean and var")
    if state["count"].shape != () or state["count"] < 0:
        _fail(f"{prefix}/count", f"must be one number ≥ 0, got {_came(state['count'])}")
    if state["mean"].shape != state["var"].shape:
        _fail(f"{prefix}/var", f"has shape {state['var'].shape}, but its mean has {state['mean'].shape}")
    if np.any(state["var"] < 0):
        _fail(f"{prefix}/var", "holds negative variances")


# ------------------------------------------------------------------ JSON
def jsonable(value):
    """``value`` with NumPy arrays and scalars turned into lists and Python numbers, for ``json.dumps``."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_or_none(value):
    """``value`` as it reads back from JSON (tuples become lists), or ``None`` if JSON cannot hold it."""
    try:
        return json.loads(json.dumps(jsonable(value)))
    except (TypeError, ValueError, RecursionError):
        return None
