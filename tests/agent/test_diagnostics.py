"""The diagnostics in every history entry: explained variance, gradient norm, mean value."""

import math
import re
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent import objectives
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

DIAGNOSTICS = ("explained_variance", "gradient_norm", "mean_value")


def small_agent(**options):
    settings = dict(horizon=32, workers=2, seed=0, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"]), **settings)


# -- the pure function ---------------------------------------------------------------------------
def test_explained_variance_against_a_hand_computed_value():
    # R − V = [1, 0, 1, 0]: Var = 0.25; R = [2, 2, 4, 4]: mean 3, Var = 1; EV = 1 − 0.25 / 1.
    assert objectives.explained_variance([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 4.0, 4.0]) == pytest.approx(0.75)


@pytest.mark.parametrize("values, expected", [
    ([1.0, 3.0, 2.0, 6.0], 1.0),            # perfect
    ([3.0, 3.0, 3.0, 3.0], 0.0),            # the mean return everywhere
    ([6.0, 1.0, 5.0, 0.0], 1 - 18.5 / 3.5),  # against the returns: R − V = [−5, 2, −3, 6], mean 0, Var 74 / 4
])
def test_explained_variance_landmarks(values, expected):
    returns = np.array([1.0, 3.0, 2.0, 6.0])  # mean 3, Var[R] = (4 + 0 + 1 + 9) / 4 = 3.5
    got = objectives.explained_variance(np.array(values), returns)
    assert got == pytest.approx(1 - np.var(returns - np.array(values)) / 3.5)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("returns", [[2.0] * 4, [0.1] * 7, [0.0] * 3])
def test_explained_variance_is_nan_when_all_returns_are_equal(returns):
    # 0.1 × 7: np.var gives 1.9e-34, not 0 (0.1 has no exact binary form); still "no variance".
    assert math.isnan(objectives.explained_variance(np.linspace(0, 1, len(returns)), returns))


def test_explained_variance_flattens_and_checks_shapes():
    values, returns = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, 2.0], [4.0, 4.0]])
    assert objectives.explained_variance(values, returns) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same number of samples; got 3 and 4"):
        objectives.explained_variance([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])


# -- what the agent records ----------------------------------------------------------------------
class ValuesBeforeTheUpdate(Callback):
    """Recomputes V and the GAE returns itself, between gathering and optimising (weights untouched)."""

    def __init__(self, agent):
        self.expected = []
        gather = agent.rollout.gather

        def recording_gather(*args, **kwargs):
            self.trajectories = gather(*args, **kwargs)
            return self.trajectories

        agent.rollout.gather = recording_gather

    def on_gather_end(self, agent):
        trajectories = self.trajectories
        horizon, workers = trajectories.rewards.shape

        def value_of(observations):
            flat = observations.reshape(horizon * workers, -1).astype(np.float32)
            return np.asarray(agent.value(flat))[:, 0].astype(np.float64).reshape(horizon, workers)

        values, next_values = value_of(trajectories.observations), value_of(trajectories.next_observations)
        _, returns = objectives.generalized_advantage_estimates(
            trajectories.rewards, values, next_values, trajectories.terminated, trajectories.episode_ends,
            agent.discount, agent.lam)
        self.expected.append((1 - np.var(returns - values) / np.var(returns), np.mean(values)))


def test_history_records_explained_variance_and_mean_value_of_the_estimates_before_the_update():
    agent = small_agent()
    recorder = ValuesBeforeTheUpdate(agent)
    history = agent.drill(3, 4, 16, callbacks=[recorder], verbose=False)
    for entry, (explained, mean_value) in zip(history, recorder.expected, strict=True):
        assert set(DIAGNOSTICS) <= set(entry)
        assert entry["explained_variance"] == pytest.approx(explained, rel=1e-4, abs=1e-5)
        assert entry["mean_value"] == pytest.approx(mean_value, rel=1e-4, abs=1e-6)
        assert entry["explained_variance"] <= 1.0


def test_gradient_norm_is_the_norm_before_clipping_of_the_minibatch_gradient():
    """One epoch, one minibatch of the whole cycle: the recorded norm is ‖∇L‖ at the gathering weights."""
    agent = small_agent(gradient_clipping=1e-3, c_entropy=0.01, c_value=0.5)
    captured = {}
    optimize = agent._optimize

    def capturing_optimize(*arguments):
        captured["data"] = arguments[0]  # (observations, actions, log π_old, advantages, returns, values, π_old/μ)
        captured["weights"] = [variable.numpy() for variable in agent._variables]  # before the update
        return optimize(*arguments)

    agent._optimize = capturing_optimize
    entry = agent.drill(1, 1, 64, verbose=False)[-1]
    assert entry["updates"] == 1

    for variable, weight in zip(agent._variables, captured["weights"]):
        variable.assign(weight)
    observations, actions, old_log_probabilities, advantages, returns, _, _ = captured["data"]
    with tf.GradientTape() as tape:
        parameters = agent.policy(observations, training=True)
        parameters = list(parameters) if isinstance(parameters, (list, tuple)) else [parameters]
        log_probabilities = agent.distribution.log_probability(tf.constant(actions), *parameters)
        entropy = tf.reduce_mean(agent.distribution.entropy(*parameters))
        policy_loss = objectives.clipped_surrogate_loss(
            log_probabilities, old_log_probabilities, objectives.normalize_advantages(advantages), agent.clip)
        value_loss = objectives.value_loss(tf.squeeze(agent.value(observations, training=True), axis=-1), returns)
        loss = policy_loss + agent.c_value * value_loss - agent.c_entropy * entropy
    norm = float(tf.linalg.global_norm(tape.gradient(loss, agent._variables)))
    assert entry["gradient_norm"] == pytest.approx(norm, rel=1e-4)
    assert entry["gradient_norm"] > 100 * agent.gradient_clipping  # not the clipped norm


def test_gradient_norm_is_averaged_over_the_applied_minibatches_and_keeps_one_trace():
    agent = small_agent()
    agent.drill(2, 3, 16, verbose=False)
    assert agent.trace_count == 1
    norms = [entry["gradient_norm"] for entry in agent.history]
    assert all(math.isfinite(norm) and norm > 0 for norm in norms)
    assert norms[0] != norms[1]


def test_per_cycle_log_line_is_unchanged(capsys):
    agent = small_agent()
    agent.drill(1, 1, 32)
    line = [text for text in capsys.readouterr().out.splitlines() if text.startswith("Cycle ")][0]
    # the founding tutorial's fields, in its order, and nothing more
    assert re.findall(r"([a-z]+): ", line) == ["r", "len", "n", "loss", "eps", "lr", "upd", "f", "times", "mem"]


# -- with MPI: the moments pooled over ranks -----------------------------------------------------
class ThreadRanks:
    """Stands in for K MPI ranks run as threads: ``average`` is an Allreduce(SUM) / K."""

    def __init__(self, size):
        self.size, self.barrier, self.slots = size, threading.Barrier(size), [None] * size

    def rank(self, rank):
        ranks = self

        class Rank:
            size = ranks.size

            def average(self, buffer):
                ranks.slots[rank] = buffer.copy()
                ranks.barrier.wait()
                mean = np.mean(ranks.slots, axis=0, dtype=np.float64).astype(np.float32)
                ranks.barrier.wait()
                buffer[:] = mean
                return buffer

        return Rank()


def test_diagnostics_over_mpi_ranks_equal_numpy_over_all_samples():
    rng = np.random.default_rng(4)
    shares = [300, 100]  # unequal: workers need not split evenly
    values = [rng.normal(40.0, 5.0, count) for count in shares]
    returns = [value + rng.normal(1.0, 3.0, count) for value, count in zip(values, shares)]
    ranks, results = ThreadRanks(2), [None, None]

    def run(rank):
        agent = SimpleNamespace(communicator=ranks.rank(rank))
        results[rank] = PPOAgent._value_diagnostics(agent, values[rank], returns[rank])

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results[0] == results[1]
    everything_values, everything_returns = np.concatenate(values), np.concatenate(returns)
    assert results[0]["explained_variance"] == pytest.approx(
        objectives.explained_variance(everything_values, everything_returns), rel=1e-5)
    assert results[0]["mean_value"] == pytest.approx(everything_values.mean(), rel=1e-6)


# -- checkpoints ---------------------------------------------------------------------------------
def test_saved_agent_keeps_the_diagnostics_and_old_histories_still_load(tmp_path):
    agent = small_agent()
    agent.drill(2, 1, 32, verbose=False)
    loaded = PPOAgent.load(agent.save(tmp_path / "new.npz"))
    assert loaded.history == agent.history
    assert all(isinstance(loaded.history[-1][key], float) for key in DIAGNOSTICS)

    for entry in agent.history:  # as saved before these keys existed
        for key in DIAGNOSTICS:
            del entry[key]
    old = PPOAgent.load(agent.save(tmp_path / "old.npz"))
    assert old.cycle == 2 and not set(DIAGNOSTICS) & set(old.history[-1])
    old.drill(1, 1, 32, verbose=False)
    assert set(DIAGNOSTICS) <= set(old.history[-1])
