import math
import re

import gymnasium
import numpy as np
import pytest

from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.agent.ppo_agent import NonFiniteLossError, PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

HISTORY_KEYS = {
    "cycle", "mean_return", "mean_length", "episodes", "episode_returns", "frames", "updates", "policy_loss",
    "value_loss", "entropy", "approx_kl", "clip_fraction", "learning_rate", "gather_seconds", "optimize_seconds", "seconds",
}


def small_agent(env="CartPole-v1", transformers=("state",), **options):
    settings = dict(horizon=32, workers=2, seed=0, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn"), make_env(env, transformers=list(transformers)), **settings)


@pytest.mark.parametrize("name, value, message", [
    ("horizon", 0, "`horizon` must be a positive int, got 0"),
    ("workers", 2.5, "`workers` must be a positive int, got 2.5"),
    ("discount", 1.5, r"`discount` must be in \[0.0, 1.0\], got 1.5"),
    ("learning_rate", 0.0, r"`learning_rate` must be in \(0.0"),
    ("lr_schedule", "cosine", "`lr_schedule` must be None"),
])
def test_bad_constructor_arguments_are_named(name, value, message):
    with pytest.raises(ValueError, match=message):
        small_agent(**{name: value})


def test_bad_drill_arguments_are_named_before_any_work():
    agent = small_agent()
    with pytest.raises(ValueError, match="`epochs` must be a positive int, got 0"):
        agent.drill(1, 0, 16)
    with pytest.raises(ValueError, match=r"`batch_size` \(100\) is larger than one cycle's samples .*32 × 2 = 64"):
        agent.drill(1, 1, 100)
    with pytest.raises(TypeError, match="Callback"):
        agent.drill(1, 1, 16, callbacks=[object()])
    assert agent.cycle == 0 and agent.history == []


def test_drill_continues_the_count_and_records_history(capsys):
    agent = small_agent()
    agent.drill(2, 2, 16)
    agent.drill(1, 3, 32)
    output = capsys.readouterr().out
    assert "Before Training: r:" in output and output.count("Before Training") == 1
    assert re.search(r"Cycle +3/3: r: .*; len: .*; n: +\d+; loss: \[.*\|.*\|.*\]; eps: .*; lr: 1.00e-03; upd: +22; f: +0.192k; "
                     r"times: \[[\d.]+\|[\d.]+\] \[\d+\|\d+\]; took [\d.]+s \[\d+s left\]; mem: [\d.]+/\d+;", output)
    assert "Drill started using 1 processes for 2 workers." in output
    assert [entry["cycle"] for entry in agent.history] == [1, 2, 3]
    assert HISTORY_KEYS <= set(agent.history[-1])
    # upd counts minibatch updates: epochs × (horizon·workers // batch_size) per cycle.
    assert [entry["updates"] for entry in agent.history] == [8, 16, 22]
    assert [entry["frames"] for entry in agent.history] == [64, 128, 192]
    assert agent.drill_outcome == "completed"
    last = agent.history[-1]
    assert all(math.isfinite(last[key]) for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"))
    assert 0 < last["entropy"] <= math.log(2) + 1e-6


def test_compiled_update_is_traced_once():
    agent = small_agent()
    agent.drill(2, 2, 16, verbose=False)
    agent.drill(1, 4, 64, verbose=False)
    agent.learning_rate, agent.clip = 5e-4, 0.1  # hyperparameters reach the graph as variables
    agent.drill(1, 1, 8, verbose=False)
    assert agent.trace_count == 1
    assert agent.history[-1]["learning_rate"] == 5e-4
    assert float(agent._graph_settings["clip"].numpy()) == pytest.approx(0.1)


def test_seeded_drills_are_reproducible():
    first, second = small_agent(seed=3), small_agent(seed=3)
    first.drill(3, 2, 16, verbose=False)
    second.drill(3, 2, 16, verbose=False)
    strip = lambda history: [{k: v for k, v in e.items() if "seconds" not in k and k != "steps_per_second"} for e in history]  # noqa: E731
    assert strip(first.history) == strip(second.history)


class StopAfterTwo(Callback):
    def __init__(self):
        self.events = []

    def on_drill_begin(self, agent):
        self.events.append(("begin", agent.cycle, agent.drill_end_cycle))

    def on_cycle_end(self, agent, stats):
        self.events.append(("cycle", stats["cycle"]))
        assert stats is agent.history[-1]
        if stats["cycle"] == 2:
            agent.stop_drill()

    def on_drill_end(self, agent, history):
        self.events.append(("end", agent.drill_outcome, len(history)))


def test_stop_drill_ends_at_the_cycle_boundary_and_drill_continues():
    agent = small_agent()
    callback = StopAfterTwo()
    agent.drill(5, 1, 32, callbacks=[callback], verbose=False)
    assert callback.events == [("begin", 0, 5), ("cycle", 1), ("cycle", 2), ("end", "stopped", 2)]
    assert agent.cycle == 2
    agent.drill(1, 1, 32, verbose=False)
    assert agent.cycle == 3 and agent.drill_outcome == "completed"


class InterruptingGatherer(Gatherer):
    calls = 0

    def select_action(self, predicted_parameters):
        InterruptingGatherer.calls += 1
        if InterruptingGatherer.calls == 20:
            raise KeyboardInterrupt
        return super().select_action(predicted_parameters)


def test_keyboard_interrupt_undoes_the_unfinished_cycle(capsys):
    agent = small_agent()
    agent.drill(1, 1, 32, verbose=False)
    weights = [w.copy() for w in agent.policy.get_weights()]
    statistics = agent.transformers[0].statistics.get_state()
    agent.assign_gatherer(InterruptingGatherer)
    history = agent.drill(3, 1, 32, verbose=False)
    assert "Drill interrupted" in capsys.readouterr().out
    assert agent.drill_outcome == "interrupted" and agent.cycle == 1 and len(history) == 1
    for before, after in zip(weights, agent.policy.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert agent.transformers[0].statistics.count == statistics["count"]
    agent.drill(1, 1, 32, verbose=False)  # and it goes on
    assert agent.cycle == 2


class NanReward(gymnasium.Wrapper):
    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, float("nan"), terminated, truncated, info


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_weights():
    agent = small_agent(env=lambda: NanReward(gymnasium.make("CartPole-v1")), transformers=())
    weights = [w.copy() for w in agent.policy.get_weights()]
    with pytest.raises(NonFiniteLossError, match="Cycle 1: the loss or its gradient became non-finite.*restored to the end of cycle 0"):
        agent.drill(2, 1, 32, verbose=False)
    assert agent.cycle == 0 and agent.drill_outcome == "failed"
    for before, after in zip(weights, agent.policy.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_linear_schedule_decays_over_each_drill():
    agent = small_agent(lr_schedule="linear")
    agent.drill(4, 1, 64, verbose=False)
    assert [entry["learning_rate"] for entry in agent.history] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])


def test_evaluate_and_act_do_not_touch_statistics():
    agent = small_agent()
    agent.drill(1, 1, 32, verbose=False)
    count = agent.transformers[0].statistics.count
    result = agent.evaluate(n_episodes=3)
    assert result.returns.shape == (3,) and np.all(result.returns == result.lengths)
    assert "3 deterministic episodes" in repr(result)
    action = agent.act(np.zeros(4, dtype=np.float32))
    assert action in (0, 1)
    assert agent.transformers[0].statistics.count == count


def test_continuous_actions_with_gaussian_and_beta():
    for distribution in ("gaussian", "beta"):
        agent = small_agent(env="Pendulum-v1", transformers=("state", "reward"), distribution=distribution)
        agent.drill(1, 1, 32, verbose=False)
        action = agent.act(np.zeros(3, dtype=np.float32))
        assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
        assert math.isfinite(agent.history[-1]["policy_loss"])


class QuietDisplay(Callback):
    replaces_text_log = True

    def __init__(self):
        self.gather_ends = []

    def on_gather_end(self, agent):
        self.gather_ends.append(agent.cycle)  # the cycle being run is not counted yet


def test_gather_end_hook_and_displays_that_replace_the_text_log(capsys):
    agent = small_agent()
    display = QuietDisplay()
    agent.drill(2, 1, 32, callbacks=[display])
    assert display.gather_ends == [0, 1]
    assert "Cycle" not in capsys.readouterr().out


def test_stop_at_return_stops_once_the_window_reaches_the_target():
    from dexterity_nb.agent.callbacks import StopAtReturn

    agent = small_agent(horizon=64)
    low_bar = StopAtReturn(target=1.0, window=3)  # any three episodes reach 1
    agent.drill(5, 1, 64, callbacks=[low_bar], verbose=False)
    assert agent.drill_outcome == "stopped" and low_bar.solved_at == (1, 128)
    never = StopAtReturn(target=10_000.0, window=3)
    agent.drill(2, 1, 64, callbacks=[never], verbose=False)
    assert agent.drill_outcome == "completed" and never.solved_at is None


def test_compiling_at_construction_leaves_no_update_behind():
    agent = small_agent()
    assert agent.trace_count == 1  # traced while building, not during the first drill
    assert int(agent.optimizer.iterations.numpy()) == 0
    moments = [v for v in agent.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and all(not np.any(np.asarray(v)) for v in moments)
