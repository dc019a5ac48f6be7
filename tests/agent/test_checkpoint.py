import json

import numpy as np
import pytest

from dexterity_nb.agent import checkpoint
from dexterity_nb.agent.checkpoint import CheckpointError
from dexterity_nb.agent.gather import Gatherer, register_gatherer
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env, masks_velocity
from dexterity_nb.models import get_model_builder


@register_gatherer
class SavedGatherer(Gatherer):
    """A registered gatherer: a saved agent names it, and loading finds it in the registry."""


def trained_agent():
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"]),
                     horizon=32, workers=2, seed=1, verbose=False, lr_schedule="linear")
    agent.assign_gatherer(SavedGatherer)
    agent.drill(3, 2, 32, verbose=False)
    return agent


def strip_timing(history):
    return [{k: v for k, v in e.items() if "seconds" not in k and k != "steps_per_second"} for e in history]


def test_save_load_restores_everything(tmp_path):
    agent = trained_agent()
    path = agent.save(tmp_path / "agent")
    assert path.name == "agent.npz"
    loaded = PPOAgent.load(path)
    assert loaded.cycle == 3 and loaded.history == agent.history
    assert loaded.gatherer_class is SavedGatherer and loaded.lr_schedule == "linear"
    assert loaded.hyperparameters() == agent.hyperparameters()
    for original, restored in zip(agent.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(original), np.asarray(restored))
    np.testing.assert_array_equal(loaded.transformers[0].statistics.mean, agent.transformers[0].statistics.mean)
    observations = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    assert [agent.act(o, deterministic=True) for o in observations] == [loaded.act(o, deterministic=True) for o in observations]
    assert [agent.act(o) for o in observations] == [loaded.act(o) for o in observations]  # same sampling stream


def test_loaded_agents_continue_identically_from_the_saved_cycle(tmp_path):
    path = trained_agent().save(tmp_path / "agent.npz")
    first, second = PPOAgent.load(path), PPOAgent.load(path)
    first.drill(2, 2, 32, verbose=False)
    second.drill(2, 2, 32, verbose=False)
    assert [e["cycle"] for e in first.history] == [1, 2, 3, 4, 5]
    assert strip_timing(first.history) == strip_timing(second.history)
    for a, b in zip(first.policy.get_weights(), second.policy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    agent = trained_agent()
    path = agent.save(tmp_path / "agent.npz")
    before = path.read_bytes()
    agent.drill(1, 1, 32, verbose=False)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        agent.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no saved agent"):
        PPOAgent.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not an agent")
    with pytest.raises(CheckpointError, match="not a saved dexterity_nb agent"):
        PPOAgent.load(junk)
    good = trained_agent().save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a saved dexterity_nb agent, or it is truncated"):
        PPOAgent.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(CheckpointError):
        PPOAgent.load(other)


def test_unregistered_gatherer_names_the_fix(tmp_path):
    agent = trained_agent()
    agent.gatherer_class = type("Local", (Gatherer,), {"__module__": "no_such_module_here"})
    path = agent.save(tmp_path / "agent.npz")
    with pytest.raises(CheckpointError, match=r"register_gatherer\(Local\).*PPOAgent.load\(path, gatherer=Local\)"):
        PPOAgent.load(path)
    assert PPOAgent.load(path, gatherer=Gatherer).gatherer_class is Gatherer


# ------------------------------------------------------------------ a velocity-free env
@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """A drilled agent on CartPole without velocities (observations (x, θ)), and its file."""
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"], mask_velocity=True),
                     horizon=32, workers=2, seed=1, verbose=False)
    agent.drill(2, 2, 32, verbose=False)
    return agent, agent.save(tmp_path_factory.mktemp("masked") / "agent.npz")


def rewritten(path, out, change):
    """A copy of the saved file at ``out`` with its JSON description changed by ``change``."""
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    description = json.loads(str(arrays.pop("description")))
    change(description)
    np.savez(out, description=np.array(json.dumps(description)), **arrays)
    return out


def test_agent_on_a_masked_env_loads_masked_and_acts_identically(masked):
    agent, path = masked
    loaded = PPOAgent.load(path)
    assert loaded.env.recipe == {"id": "CartPole-v1", "kwargs": {}, "mask_velocity": True}
    assert loaded.env.observation_space.shape == (2,) and masks_velocity(loaded.env.make_worker_env())
    observations = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    assert [agent.act(o, deterministic=True) for o in observations] == [loaded.act(o, deterministic=True) for o in observations]
    assert [agent.act(o) for o in observations] == [loaded.act(o) for o in observations]
    loaded.drill(1, 1, 32, verbose=False)  # and it trains on, masked


def test_files_from_before_recurrent_agents_and_the_decoupled_objective_load_with_defaults(tmp_path):
    path = trained_agent().save(tmp_path / "agent.npz")
    old = rewritten(path, tmp_path / "old.npz", lambda description: description["hyperparameters"].pop("chunk_length"))
    assert PPOAgent.load(old).chunk_length is None
    older = rewritten(path, tmp_path / "older.npz", lambda description: description["hyperparameters"].pop("behaviour_weight_bound"))
    assert PPOAgent.load(older).behaviour_weight_bound == 1.0
    bad = rewritten(path, tmp_path / "bad.npz", lambda description: description["hyperparameters"].update(chunk_length=0))
    with pytest.raises(CheckpointError, match=r"hyperparameters.chunk_length"):
        PPOAgent.load(bad)


def test_files_from_before_mask_velocity_load_unmasked(tmp_path):
    path = trained_agent().save(tmp_path / "agent.npz")
    old = rewritten(path, tmp_path / "old.npz", lambda description: description["env"].pop("mask_velocity"))
    loaded = PPOAgent.load(old)
    assert loaded.env.observation_space.shape == (4,) and not masks_velocity(loaded.env.env)


def test_mask_velocity_in_a_file_is_checked(masked, tmp_path):
    _, path = masked

    def set_mask(value):
        return lambda description: description["env"].__setitem__("mask_velocity", value)

    with pytest.raises(CheckpointError, match=r"`env.mask_velocity` must be true or false, got 'yes'"):
        PPOAgent.load(rewritten(path, tmp_path / "bad.npz", set_mask("yes")))
    with pytest.raises(CheckpointError, match="the array policy/0 .* needs"):  # unmasked env, masked weights
        PPOAgent.load(rewritten(path, tmp_path / "unmasked.npz", set_mask(False)))

    def on_another_task(description):
        description["env"]["id"] = "FrozenLake-v1"

    with pytest.raises(CheckpointError, match=r"'FrozenLake-v1' cannot be made .*register_velocity_indices.*"
                                              r"make_env\(\.\.\., mask_velocity=True"):
        PPOAgent.load(rewritten(path, tmp_path / "unknown.npz", on_another_task))


def test_an_env_passed_to_load_must_match_the_saved_masking(masked):
    _, path = masked
    with pytest.raises(CheckpointError, match=r"saved on an env without velocities .* make_env\(\.\.\., mask_velocity=True\)"):
        PPOAgent.load(path, env=make_env("CartPole-v1", transformers=["state"]))
    loaded = PPOAgent.load(path, env=make_env("CartPole-v1", transformers=["state"], mask_velocity=True))
    assert loaded.env.observation_space.shape == (2,)
