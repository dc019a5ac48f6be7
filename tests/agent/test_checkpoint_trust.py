"""What loading a checkpoint trusts: the file is data; names resolve only from this process's registries.

Most tests start from one real saved agent (module-scoped: building an agent costs ~1.5 s) and
rewrite its JSON description or its arrays inside a copy of the ``.npz``.
"""

import json
import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

from dexterity_nb import cli
from dexterity_nb.agent import gather
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.checkpoint import CheckpointError, load_agent
from dexterity_nb.agent.checkpoint_schema import HYPERPARAMETERS
from dexterity_nb.agent.gather import GATHERERS, Gatherer, register_gatherer
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common import policies, transformers
from dexterity_nb.common.policies import DISTRIBUTIONS, Categorical, register_distribution
from dexterity_nb.common.transformers import StateNormalizationTransformer, register_transformer
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

PAYLOAD_MODULE = "dexterity_checkpoint_payload"  # a module whose import leaves a marker file


def small_agent(env=None, **options):
    env = make_env("CartPole-v1", transformers=["state"]) if env is None else env
    return PPOAgent(get_model_builder("simple", "ffn"), env, horizon=32, workers=2, seed=1, verbose=False, **options)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A drilled agent with a linear schedule and state normalisation, and its file."""
    agent = small_agent(lr_schedule="linear")
    agent.drill(3, 2, 32, verbose=False)
    return agent, agent.save(tmp_path_factory.mktemp("saved") / "agent.npz")


@pytest.fixture
def registries(monkeypatch):
    """Fresh copies of the registries, so that what a test registers stays in that test."""
    monkeypatch.setattr(gather, "GATHERERS", dict(GATHERERS))
    monkeypatch.setattr(transformers, "TRANSFORMERS", dict(transformers.TRANSFORMERS))
    monkeypatch.setattr(policies, "DISTRIBUTIONS", dict(DISTRIBUTIONS))


def contents(path):
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(str(arrays.pop("description"))), arrays


def rewrite(path, out, change_description=None, change_arrays=None):
    """A copy of the file at ``out`` with its description and/or arrays changed in place."""
    description, arrays = contents(path)
    if change_description is not None:
        description = change_description(description) or description
    if change_arrays is not None:
        change_arrays(arrays)
    np.savez(out, description=np.array(json.dumps(description)), **arrays)
    return out


def observations(count=50):
    return np.random.default_rng(0).normal(size=(count, 4)).astype(np.float32)


def same_actions(first, second):
    return ([first.act(o, deterministic=True) for o in observations()]
            == [second.act(o, deterministic=True) for o in observations()])


# ------------------------------------------------------------------ 1. a file never runs code
@pytest.fixture
def payload(tmp_path, monkeypatch):
    """A module on sys.path that writes a marker file when imported; yields the marker's path."""
    marker = tmp_path / "payload-ran"
    (tmp_path / f"{PAYLOAD_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop(PAYLOAD_MODULE, None)


def craft(field, marker):
    """A change to the description that names code to run or a module to import in ``field``."""
    evil = f"{PAYLOAD_MODULE}:Thing"

    def change(description):
        if field == "transformer runs a command":
            description["transformers"][0] = {"class": "subprocess:run", "config": {"args": ["touch", str(marker)]}}
        elif field == "transformer imports":
            description["transformers"][0]["class"] = evil
        elif field == "distribution calls os.system":
            description["distribution"] = {"class": "os:system", "config": {"command": f"touch {marker}"}}
        elif field == "distribution imports":
            description["distribution"]["class"] = evil
        elif field == "gatherer runs a command":
            description["gatherer"] = "subprocess:run"
        elif field == "gatherer imports":
            description["gatherer"] = evil
        elif field == "env id imports":
            description["env"]["id"] = f"{PAYLOAD_MODULE}:Env-v0"
        elif field == "model builder imports":
            description["model_builder"]["model"] = evil
        elif field == "format 1 import path":  # the earlier format named classes by import path
            description["format"] = "dexterity_nb-agent-1"
            description["transformers"][0]["class"] = evil

    return change


ATTACKS = ["transformer runs a command", "transformer imports", "distribution calls os.system", "distribution imports",
           "gatherer runs a command", "gatherer imports", "env id imports", "model builder imports", "format 1 import path"]


def overridden(attack, given):
    """The caller's env or gatherer replaces the field: then the file's name is simply not used."""
    return given and attack.startswith(("gatherer", "env"))


@pytest.mark.parametrize("given", [False, True], ids=["file only", "env and gatherer given"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_crafted_file_never_imports_or_runs_code(saved, tmp_path, payload, attack, given):
    path = rewrite(saved[1], tmp_path / "crafted.npz", craft(attack, payload))
    arguments = dict(env=make_env("CartPole-v1", transformers=["state"]), gatherer=Gatherer) if given else {}
    if overridden(attack, given):
        assert PPOAgent.load(path, **arguments).gatherer_class is Gatherer
    else:
        with pytest.raises(CheckpointError, match="not registered|import|would build|saved with the transformers"):
            PPOAgent.load(path, **arguments)
    assert not payload.exists() and PAYLOAD_MODULE not in sys.modules


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_cli_refuses_a_crafted_file_too(saved, tmp_path, payload, capsys, attack):
    path = rewrite(saved[1], tmp_path / "crafted.npz", craft(attack, payload))
    status = cli.main(["evaluate", str(path), "--episodes", "1"])
    if attack.startswith("gatherer"):  # evaluate passes gatherer=Gatherer: the file's gatherer is never looked up
        assert status == 0 and "1 deterministic episodes" in capsys.readouterr().out
    else:
        assert status == 2
        assert capsys.readouterr().err.startswith(f"dexterity-nb: error: {path}")
    assert not payload.exists() and PAYLOAD_MODULE not in sys.modules


def test_the_file_stores_registered_names_not_import_paths(saved):
    description, _ = contents(saved[1])
    assert description["transformers"] == [{"class": "StateNormalizationTransformer", "config": {"clip": 10.0, "epsilon": 1e-8}}]
    assert description["distribution"] == {"class": "categorical", "config": {}}
    assert description["gatherer"] == "Gatherer"
    assert description["env"] == {"id": "CartPole-v1", "kwargs": {}, "mask_velocity": False}


def test_registering_checks_the_base_class_and_taken_names(registries):
    assert gather.GATHERERS["Gatherer"] is Gatherer
    with pytest.raises(TypeError, match="Only subclasses of Gatherer"):
        register_gatherer(Categorical)
    with pytest.raises(TypeError, match="Only subclasses of BaseTransformer"):
        register_transformer(Gatherer)
    with pytest.raises(TypeError, match="Only subclasses of Distribution"):
        register_distribution(StateNormalizationTransformer())

    @register_gatherer
    class Explorer(Gatherer):
        pass

    first = Explorer

    @register_gatherer(name="explorer")
    class Explorer(Gatherer):  # noqa: F811  the same cell run again: replaces silently
        pass

    assert gather.GATHERERS["Explorer"] is first and gather.GATHERERS["explorer"] is Explorer
    register_gatherer(Explorer)
    assert gather.GATHERERS["Explorer"] is Explorer  # same module and qualname: replaced, no error
    other = type("Explorer", (Gatherer,), {"__module__": "somewhere.else"})
    with pytest.raises(ValueError, match="'Explorer' is already taken by .*Explorer.*overwrite=True"):
        register_gatherer(other)
    assert register_gatherer(other, overwrite=True) is other and gather.GATHERERS["Explorer"] is other

    class Shadow(Categorical):  # inherits name = "categorical"
        pass

    with pytest.raises(ValueError, match="'categorical' is already taken"):
        register_distribution(Shadow)
    Shadow.name = "shadow"
    assert register_distribution(Shadow) is Shadow and policies.DISTRIBUTIONS["shadow"] is Shadow
    assert register_transformer(StateNormalizationTransformer, name="z") is transformers.TRANSFORMERS["z"]


class ClippedState(StateNormalizationTransformer):
    """Not registered until a test does it."""


class TwoCategorical(Categorical):
    name = "two_categorical"


class Wanderer(Gatherer):
    pass


def test_unregistered_classes_save_and_loading_asks_for_each(registries, tmp_path):
    agent = small_agent(make_env("CartPole-v1", transformers=[ClippedState(clip=5.0)]), distribution=TwoCategorical)
    agent.assign_gatherer(Wanderer)
    path = agent.save(tmp_path / "agent.npz")
    description, _ = contents(path)
    assert (description["transformers"][0]["class"], description["distribution"]["class"], description["gatherer"]) == (
        "ClippedState", "two_categorical", "Wanderer")
    with pytest.raises(CheckpointError, match=r"gatherer 'Wanderer' \(field `gatherer`\).*register_gatherer\(Wanderer\).*"
                                              r"PPOAgent.load\(path, gatherer=Wanderer\)"):
        PPOAgent.load(path)
    register_gatherer(Wanderer)
    with pytest.raises(CheckpointError, match=r"distribution 'two_categorical' \(field `distribution.class`\).*"
                                              r"register_distribution\("):
        PPOAgent.load(path)
    register_distribution(TwoCategorical)
    with pytest.raises(CheckpointError, match=r"transformer 'ClippedState' \(field `transformers\[0\].class`\).*"
                                              r"register_transformer\(ClippedState\)"):
        PPOAgent.load(path)
    register_transformer(ClippedState)
    loaded = PPOAgent.load(path)
    assert type(loaded.transformers[0]) is ClippedState and loaded.transformers[0].clip == 5.0
    assert type(loaded.distribution) is TwoCategorical and loaded.gatherer_class is Wanderer
    assert same_actions(agent, loaded)


def test_saving_refuses_an_unregistered_class_that_shadows_a_registered_name(registries, tmp_path):
    class Gatherer(gather.Gatherer):  # the built-in's name: loading would build the built-in
        pass

    class Categorical(policies.Categorical):  # inherits name = "categorical"
        pass

    agent = small_agent()
    agent.assign_gatherer(Gatherer)
    with pytest.raises(CheckpointError, match=r"gatherer .*Gatherer is not registered, and its name 'Gatherer' is registered "
                                              r"for dexterity_nb.agent.gather.Gatherer.*register_gatherer\(Gatherer, name=...\)"):
        agent.save(tmp_path / "agent.npz")
    agent.assign_gatherer(gather.Gatherer)
    agent.distribution = Categorical(agent.env.action_space)
    with pytest.raises(CheckpointError, match=r"distribution .*Categorical is not registered, and its name 'categorical' is "
                                              r"registered for dexterity_nb.common.policies.Categorical.*a `name` of its own"):
        agent.save(tmp_path / "agent.npz")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_unregistered_model_builder_and_env_name_the_fix(saved, tmp_path):
    def rename_builder(description):
        description["model_builder"]["model"] = "tiny"

    with pytest.raises(CheckpointError, match=r"model builder \('tiny', 'ffn'\).*@register_model_builder\('tiny', 'ffn'\)"):
        PPOAgent.load(rewrite(saved[1], tmp_path / "builder.npz", rename_builder))

    def unknown_env(description):
        description["env"]["id"] = "NoSuchEnv-v0"

    path = rewrite(saved[1], tmp_path / "env.npz", unknown_env)
    with pytest.raises(CheckpointError, match=r"'NoSuchEnv-v0' \(field `env.id`\), which is not registered with gymnasium.*"
                                              r"env=make_env\(\.\.\., transformers=\[StateNormalizationTransformer"):
        PPOAgent.load(path)

    def no_recipe(description):
        description["env"] = None

    with pytest.raises(CheckpointError, match=r"env instance or function.*PPOAgent.load\(path, env=make_env"):
        PPOAgent.load(rewrite(saved[1], tmp_path / "instance.npz", no_recipe))


def test_a_format_1_file_loads_through_the_registries(saved, tmp_path):
    def as_format_1(description):
        description["format"] = "dexterity_nb-agent-1"
        description["transformers"][0]["class"] = "dexterity_nb.common.transformers:StateNormalizationTransformer"
        description["distribution"] = {"class": "dexterity_nb.common.policies:Categorical", "config": {"name": "categorical"}}
        description["gatherer"] = "dexterity_nb.agent.gather:Gatherer"

    path = rewrite(saved[1], tmp_path / "format1.npz", as_format_1)
    loaded = PPOAgent.load(path)
    assert type(loaded.distribution) is Categorical and same_actions(saved[0], loaded)
    assert same_actions(saved[0], PPOAgent.load(path, env=make_env("CartPole-v1", transformers=["state"])))


# ------------------------------------------------------------------ 2. a damaged file never loads
def put(*keys, value):
    def change(description):
        target = description
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def drop(*keys):
    def change(description):
        target = description
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


DAMAGED_DESCRIPTIONS = [
    (drop("history"), r"`description` must hold exactly the keys .*missing \['history'\]"),
    (put("extra", value=1), r"`description` must hold exactly .*unexpected \['extra'\]"),
    (drop("hyperparameters", "horizon"), r"`hyperparameters` must hold exactly the keys .*missing \['horizon'\]"),
    (put("hyperparameters", "horizon", value="32"), r"`hyperparameters.horizon` must be an int ≥ 1, got '32'"),
    (put("hyperparameters", "workers", value=2.0), r"`hyperparameters.workers` must be an int ≥ 1, got 2.0"),
    (put("hyperparameters", "learning_rate", value=float("nan")), r"`hyperparameters.learning_rate` must be a finite number"),
    (put("hyperparameters", "clip", value=True), r"`hyperparameters.clip` must be a finite number, got True"),
    (put("hyperparameters", "lr_schedule", value="cosine"), r"`hyperparameters.lr_schedule` must be null, \"linear\" or \"custom\""),
    (put("hyperparameters", "seed", value=-1), r"`hyperparameters.seed` must be an int ≥ 0"),
    (put("model_builder", "model", value=3), r"`model_builder.model` must be a registered name"),
    (put("model_builder", "shared", value="no"), r"`model_builder.shared` must be true or false"),
    (drop("model_builder", "model_type"), r"`model_builder` must hold the key 'model_type'"),
    (put("distribution", value="categorical"), r"`distribution` must be a dict"),
    (put("distribution", "config", value=[]), r"`distribution.config` must be a dict"),
    (put("env", "kwargs", value=[]), r"`env.kwargs` must be a dict"),
    (put("env", "kwargs", value={"seed": 3}), r"`env.kwargs` holds \['seed'\], which are make_env's own"),
    (put("env", "id", value=""), r"`env.id` must be a registered name"),
    (put("transformers", value={}), r"`transformers` must be a list"),
    (drop("transformers", 0, "config"), r"`transformers\[0\]` must hold exactly the keys \['class', 'config'\]"),
    (put("gatherer", value=5), r"`gatherer` must be a registered name"),
    (put("gatherer", value="x" * 201), r"`gatherer` must be a registered name"),
    (put("cycle", value=-1), r"`cycle` must be an int ≥ 0, got -1"),
    (put("cycle", value=5), r"`cycle` is 5, but `history` holds 3 cycles"),
    (put("history", value="x"), r"`history` must be a list"),
    (put("history", 1, "cycle", value=7), r"`history\[1\].cycle` must be 2 \(cycles run 1, 2, … n\), got 7"),
    (put("history", 0, "frames", value="64"), r"`history\[0\].frames` must be an int ≥ 0"),
    (put("history", 0, "policy_loss", value=float("inf")), r"`history\[0\].policy_loss` must be a finite number or NaN"),
    (put("history", 0, "episode_returns", value=3.0), r"`history\[0\].episode_returns` must be a list"),
    (put("history", 0, "episode_lengths", value=[1.5]), r"`history\[0\].episode_lengths\[0\]` must be an int ≥ 0"),
    (drop("history", 0, "updates"), r"`history\[0\]` lacks the keys \['updates'\]"),
    (put("random_streams", "shuffle", "bit_generator", value="MT19937"), r"`random_streams.shuffle.bit_generator` must be \"PCG64\""),
    (put("random_streams", "act", "state", "state", value=-1), r"`random_streams.act.state.state` must be an int ≥ 0"),
    (put("random_streams", "act", "state", value="x"), r"`random_streams.act.state` must be a dict"),
    (put("random_streams", "act", "uinteger", value=2**40), r"`random_streams.act.uinteger` must be an int ≥ 0 and < 4294967296"),
    (put("random_streams", "workers", value=[]), r"`random_streams.workers` must hold 1 to 2 \(hyperparameters.workers\) states, got 0"),
    (drop("random_streams", "workers", 0, "has_uint32"), r"`random_streams.workers\[0\]` must hold exactly the keys"),
    (put("counts", "policy", value="6"), r"`counts.policy` must be an int ≥ 0"),
    (put("counts", "policy", value=10**12), r"`counts` announces \d+ weight arrays, but the file holds \d+ arrays"),
    (drop("counts", "optimizer"), r"`counts` must hold exactly the keys .*missing \['optimizer'\]"),
]


@pytest.mark.parametrize("change, message", DAMAGED_DESCRIPTIONS, ids=[m[:40] for _, m in DAMAGED_DESCRIPTIONS])
def test_every_damaged_field_is_named(saved, tmp_path, change, message):
    path = rewrite(saved[1], tmp_path / "damaged.npz", change)
    with pytest.raises(CheckpointError, match=r"damaged or was not written by dexterity_nb: " + message):
        PPOAgent.load(path)


def set_array(name, value):
    def change(arrays):
        arrays[name] = value(arrays.get(name))
    return change


def drop_array(name):
    return lambda arrays: arrays.pop(name)


def with_nan(array):
    array = array.copy()
    array.flat[0] = np.nan
    return array


DAMAGED_ARRAYS = [
    (set_array("policy/0", with_nan), r"`policy/0` holds NaN or infinite values"),
    (set_array("optimizer/2", lambda a: a + np.inf), r"`optimizer/2` holds NaN or infinite values"),
    (set_array("transformer/0/state/mean", with_nan), r"`transformer/0/state/mean` holds NaN"),
    (set_array("transformer/0/state/var", lambda a: -a), r"`transformer/0/state/var` holds negative variances"),
    (set_array("transformer/0/state/count", lambda a: -a), r"`transformer/0/state/count` must be one number ≥ 0"),
    (drop_array("transformer/0/state/var"), r"`transformer/0/state/var` is missing"),
    (drop_array("policy/3"), r"`policy/3` is missing"),
    (set_array("evil", lambda _: np.zeros(3)), r"`evil` is an array no saved agent holds"),
    (set_array("value/7", lambda _: np.zeros(3)), r"`value/7` is an array no saved agent holds"),
    (set_array("policy/0", lambda a: np.array(["x"])), r"`policy/0` must be an array of numbers"),
]


@pytest.mark.parametrize("change, message", DAMAGED_ARRAYS, ids=[m[:40] for _, m in DAMAGED_ARRAYS])
def test_every_damaged_array_is_named(saved, tmp_path, change, message):
    path = rewrite(saved[1], tmp_path / "damaged.npz", change_arrays=change)
    with pytest.raises(CheckpointError, match=r"damaged or was not written by dexterity_nb: " + message):
        PPOAgent.load(path)


@pytest.mark.parametrize("change_description, change_arrays, message", [
    (put("model_builder", "hidden_units", value=[32, 32]), None,
     r"the array policy/0 is float32 of shape \(4, 64\), but the policy built from its description needs float32 of shape \(4, 32\)"),
    (put("model_builder", "shared", value=True), None,
     r"holds \d+ optimizer arrays, but the optimizer built from its description has \d+ variables"),
    (None, set_array("optimizer/0", lambda a: a.astype(np.float64) + 0.5), r"the array optimizer/0 is float64 .* needs int64"),
    (None, lambda arrays: arrays.update({f"transformer/0/state/{k}": np.ones(5) for k in ("mean", "var")}),
     r"the statistics transformer/0/state have shape \(5,\), but the env's observations need \(4,\)"),
    (None, lambda arrays: arrays.update({f"transformer/0/other/{k}": np.ones(()) for k in ("count", "mean", "var")}),
     r"holds statistics that none of its transformers keeps: \['transformer/0/other/count'"),
])
def test_arrays_that_do_not_fit_the_built_networks_are_refused(saved, tmp_path, change_description, change_arrays, message):
    path = rewrite(saved[1], tmp_path / "misfit.npz", change_description, change_arrays)
    with pytest.raises(CheckpointError, match=message):
        PPOAgent.load(path)


def assert_no_pickle_advice(error):
    messages = []
    while error is not None:  # the error and every cause or context shown with it
        messages.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert "pickle" not in " ".join(messages).lower(), messages


def test_files_that_are_not_agents_never_suggest_allowing_pickles(saved, tmp_path):
    random_bytes = tmp_path / "random.npz"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as handle:
        np.save(handle, np.zeros(3))
    prefixed = tmp_path / "prefixed.npz"  # a zip with junk before it: is_zipfile says yes, np.load tries pickle
    prefixed.write_bytes(b"junk" * 64 + saved[1].read_bytes())
    objects = tmp_path / "objects.npz"
    np.savez(objects, description=np.array([{"format": "dexterity_nb-agent-2"}], dtype=object))
    for path in (random_bytes, npy, prefixed, objects):
        with pytest.raises(CheckpointError, match="is not a saved dexterity_nb agent") as caught:
            PPOAgent.load(path)
        assert_no_pickle_advice(caught.value)


def test_unreadable_descriptions_are_refused(tmp_path):
    deep = tmp_path / "deep.npz"
    np.savez(deep, description=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(CheckpointError, match="description is not readable JSON"):
        PPOAgent.load(deep)
    listed = tmp_path / "listed.npz"
    np.savez(listed, description=np.array(json.dumps([{"format": "dexterity_nb-agent-2"}])))
    with pytest.raises(CheckpointError, match=r"is not a saved dexterity_nb agent \(format None, expected 'dexterity_nb-agent-2'\)"):
        PPOAgent.load(listed)
    numbers = tmp_path / "numbers.npz"
    np.savez(numbers, description=np.arange(3))
    with pytest.raises(CheckpointError, match="it has no description"):
        PPOAgent.load(numbers)


class Built(Exception):
    """Raised instead of building an agent: the description got past every check."""


class StubAgent:
    def __init__(self, *arguments, **options):
        raise Built


def description_paths(value, keys=()):
    """Every key path in a description, with one entry of each list (history and streams are long)."""
    yield keys
    if isinstance(value, dict):
        for key, item in value.items():
            yield from description_paths(item, (*keys, key))
    elif isinstance(value, list) and value:
        yield from description_paths(value[0], (*keys, 0))


def test_no_malformed_description_gets_past_the_checks_as_a_raw_error(saved, tmp_path):
    description, _ = contents(saved[1])
    paths = [keys for keys in description_paths(description) if keys and keys != ("format",)]
    outcomes = {"refused": 0, "accepted": 0}
    for keys in paths:
        for junk in (None, "x", -1, 1.5, [], {}, True, float("nan")):
            path = rewrite(saved[1], tmp_path / "fuzzed.npz", put(*keys, value=junk))
            try:
                load_agent(StubAgent, path, gatherer=None)
                raise AssertionError("StubAgent always raises")
            except CheckpointError:
                outcomes["refused"] += 1
            except Built:
                outcomes["accepted"] += 1  # a valid value (seed None, gradient_clipping 1.5, ...)
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0, outcomes


def test_every_hyperparameter_is_checked_when_loading(saved):
    assert set(HYPERPARAMETERS) == set(saved[0].hyperparameters())


# ------------------------------------------------------------------ 3. the learning rate after loading
class RecordLearningRate(Callback):
    """The rate the optimizer trained with in each cycle, next to what history reports."""

    def __init__(self):
        self.pairs = []

    def on_cycle_end(self, agent, stats):
        self.pairs.append((float(agent.optimizer.learning_rate.numpy()), stats["learning_rate"]))


def test_the_first_cycle_after_loading_trains_with_the_rate_history_reports(saved):
    loaded = PPOAgent.load(saved[1])
    saved_rate = float(loaded.optimizer.learning_rate.numpy())  # the last cycle's, 1e-3 × (1 − 2/3)
    assert saved_rate == pytest.approx(1e-3 / 3, rel=1e-6)
    recorder = RecordLearningRate()
    loaded.drill(2, 1, 32, callbacks=[recorder], verbose=False)
    assert [reported for _, reported in recorder.pairs] == pytest.approx([1e-3, 5e-4])
    assert [used for used, _ in recorder.pairs] == pytest.approx([reported for _, reported in recorder.pairs], rel=1e-6)


# ------------------------------------------------------------------ 4. custom lr_schedule functions
def half_rate(progress):
    return 0.5


def test_a_custom_schedule_must_be_passed_back_when_loading(tmp_path, capsys):
    agent = small_agent(lr_schedule=half_rate)
    path = agent.save(tmp_path / "agent.npz")
    assert agent.hyperparameters()["lr_schedule"] == "custom"
    with pytest.raises(CheckpointError, match=r"was saved with a custom lr_schedule function, which a file cannot hold; "
                                              r"pass it: PPOAgent.load\(path, lr_schedule=your_function\)\.$"):
        PPOAgent.load(path)
    loaded = PPOAgent.load(path, lr_schedule=half_rate)
    loaded.drill(1, 1, 32, verbose=False)
    assert loaded.lr_schedule is half_rate and loaded.history[-1]["learning_rate"] == pytest.approx(5e-4)
    assert cli.main(["evaluate", str(path), "--episodes", "1"]) == 0  # evaluating needs no schedule
    assert "1 deterministic episodes" in capsys.readouterr().out


# ------------------------------------------------------------------ 5. env= must have the saved transformers
@pytest.mark.parametrize("env", [
    lambda: make_env("CartPole-v1"),
    lambda: "CartPole-v1",
    lambda: gymnasium.make("CartPole-v1"),
    lambda: make_env("CartPole-v1", transformers=[StateNormalizationTransformer(clip=5.0)]),
    lambda: make_env("CartPole-v1", transformers=["state", "reward"]),
], ids=["no transformers", "an id", "a gymnasium env", "another config", "one more"])
def test_an_env_with_other_transformers_is_refused(saved, env):
    with pytest.raises(CheckpointError, match=r"was saved with the transformers \[StateNormalizationTransformer\(clip=10.0, "
                                              r"epsilon=1e-08\)\], but the env passed has \[.*\]; .*make_env\(\.\.\., "
                                              r"transformers=\[StateNormalizationTransformer"):
        PPOAgent.load(saved[1], env=env())


def test_an_env_with_the_saved_transformers_takes_over_their_statistics(saved):
    agent, path = saved
    loaded = PPOAgent.load(path, env=make_env("CartPole-v1", transformers=[StateNormalizationTransformer()]))
    np.testing.assert_array_equal(loaded.transformers[0].statistics.mean, agent.transformers[0].statistics.mean)
    assert loaded.transformers[0].statistics.count == agent.transformers[0].statistics.count > 0
    assert same_actions(agent, loaded)


def test_reward_normalisation_keeps_its_discount_and_statistics(tmp_path):
    agent = small_agent(make_env("CartPole-v1", transformers=["state", "reward"]), discount=0.9)
    agent.drill(1, 1, 32, verbose=False)
    path = agent.save(tmp_path / "reward.npz")
    assert contents(path)[0]["transformers"][1] == {"class": "RewardNormalizationTransformer",
                                                    "config": agent.env.transformers[1].config()}
    for loaded in (PPOAgent.load(path), PPOAgent.load(path, env=make_env("CartPole-v1", transformers=["state", "reward"]))):
        original, restored = agent.transformers[1], loaded.transformers[1]
        assert restored.discount == original.discount
        assert restored.statistics.get_state()["var"] == original.statistics.get_state()["var"]
        assert restored.statistics.count == original.statistics.count == 64


def test_a_plain_env_is_fine_for_an_agent_saved_without_transformers(tmp_path):
    agent = small_agent(make_env("CartPole-v1"))
    path = agent.save(tmp_path / "plain.npz")
    loaded = PPOAgent.load(path, env=gymnasium.make("CartPole-v1"))
    assert loaded.transformers == [] and same_actions(agent, loaded)


# ------------------------------------------------------------------ 6. saves that were killed
def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_saving_removes_only_the_temporary_files_of_dead_processes(saved, tmp_path):
    stale = tmp_path / f"agent.npz.tmp-{dead_pid()}"
    alive = tmp_path / f"agent.npz.tmp-{os.getppid()}"  # a running process: perhaps saving right now
    others = [tmp_path / "agent.npz.tmp-notapid", tmp_path / f"other.npz.tmp-{dead_pid()}", tmp_path / "agent.npz.tmp-"]
    for path in (stale, alive, *others):
        path.write_bytes(b"half a checkpoint")
    path = saved[0].save(tmp_path / "agent.npz")
    assert not stale.exists()
    assert alive.exists() and all(other.exists() for other in others)
    assert PPOAgent.load(path).cycle == 3


def test_cli_drill_gatherer_imports_only_what_the_command_line_names(tmp_path, monkeypatch):
    (tmp_path / "my_gatherers.py").write_text(
        "from dexterity_nb.agent.gather import Gatherer\nclass Curious(Gatherer):\n    pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # _load_gatherer puts the working folder on it
    try:
        assert cli._load_gatherer("my_gatherers:Curious").__name__ == "Curious"
        with pytest.raises(ValueError, match=r"--gatherer 'my_gatherers:Missing' cannot be imported"):
            cli._load_gatherer("my_gatherers:Missing")
    finally:
        sys.modules.pop("my_gatherers", None)
