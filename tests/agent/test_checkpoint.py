import numpy as np
import pytest

from dexterity_nb.agent import checkpoint
from dexterity_nb.agent.checkpoint import CheckpointError
from dexterity_nb.agent.gather import Gatherer, register_gatherer
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
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
