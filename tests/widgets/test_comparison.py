"""Comparison: same env and seeds per variant; its runs equal agents trained on their own."""

import math

import numpy as np
import pytest

from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.widgets.comparison import Comparison, frames_to_reach, variant_curve


class GreedyGatherer(Gatherer):
    """Always the most likely action: a variant that visibly differs from sampling."""

    def select_action(self, predicted_parameters):
        action = np.argmax(predicted_parameters[0], axis=-1)
        log_probability = self.distribution.log_probability(action, *predicted_parameters)
        return action[0], log_probability[0]


HYPERPARAMETERS = {"horizon": 64, "workers": 2}
KEYS = ("cycle", "frames", "mean_return", "episodes", "policy_loss", "value_loss", "entropy")


def assert_same_history(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        for key in KEYS:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)


def test_comparison_results_match_agents_trained_separately(make_agent):
    comparison = Comparison({"PPO": Gatherer, "greedy": {"gatherer": GreedyGatherer}},
                            env="CartPole-v1", seeds=[0, 1], cycles=2, epochs=1, batch_size=64,
                            hyperparameters=HYPERPARAMETERS, mode="widgets", redraw_seconds=0)
    assert comparison.outcome == "completed"
    for name, gatherer in (("PPO", Gatherer), ("greedy", GreedyGatherer)):
        results = comparison.results[name]
        assert results.seeds == [0, 1] and len(results.histories) == 2
        for seed, history in zip(results.seeds, results.histories):
            agent = make_agent(seed=seed)
            agent.assign_gatherer(gatherer)
            assert_same_history(history, agent.drill(2, 1, 64, verbose=False))
    rows = {row["variant"]: row for row in comparison.summary()}
    ppo = comparison.results["PPO"]
    assert rows["PPO"]["final_return"] == pytest.approx(np.mean(ppo.final_returns))
    assert rows["PPO"]["runs"] == 2 and rows["PPO"]["wall_seconds"] > 0
    assert comparison.threshold == 475  # CartPole-v1's reward_threshold
    assert bytes(comparison.plot.value).startswith(b"\x89PNG")
    assert "greedy" in comparison.table.value and "PPO" in comparison.table.value


def test_variant_configs_change_hyperparameters_per_variant():
    comparison = Comparison({"lr 1e-3": {}, "lr 3e-4": {"learning_rate": 3e-4}},
                            env="CartPole-v1", seeds=1, cycles=1, epochs=1, batch_size=64,
                            hyperparameters=HYPERPARAMETERS, mode="widgets")
    rates = {name: results.histories[0][0]["learning_rate"]
             for name, results in comparison.results.items()}
    assert rates["lr 3e-4"] == pytest.approx(3e-4) and rates["lr 1e-3"] != rates["lr 3e-4"]


def test_stop_click_ends_the_running_drill_and_skips_the_remaining_runs():
    comparison = Comparison({"a": Gatherer, "b": Gatherer}, env="CartPole-v1", seeds=2,
                            cycles=3, epochs=1, batch_size=64, hyperparameters=HYPERPARAMETERS,
                            mode="widgets", start=False)
    original = comparison._on_cycle_end

    def click_after_first_cycle(agent):
        original(agent)
        if agent.cycle == 1:
            comparison.stop_button.click()

    comparison._on_cycle_end = click_after_first_cycle
    comparison.run()
    assert comparison.outcome == "stopped"
    assert [len(h) for h in comparison.results["a"].histories] == [1]
    assert comparison.results["b"].histories == []
    rows = {row["variant"]: row for row in comparison.summary()}
    assert rows["a"]["runs"] == 1 and rows["a"]["runs_stopped_early"] == 1
    assert "1 (1 stopped early)" in comparison.table.value
    assert "± 0.0" not in comparison.table.value, "one run has no spread across seeds to show"


def test_curve_and_threshold_helpers():
    histories = [[{"mean_return": 10.0, "frames": 100}, {"mean_return": 30.0, "frames": 200}],
                 [{"mean_return": 20.0, "frames": 100}]]
    curve = variant_curve(histories)
    np.testing.assert_allclose(curve["mean"], [15.0, 30.0])
    np.testing.assert_allclose(curve["low"], [10.0, 30.0])
    np.testing.assert_allclose(curve["high"], [20.0, 30.0])
    assert frames_to_reach(histories[0], 25) == 200 and frames_to_reach(histories[1], 25) is None
    assert frames_to_reach([{"mean_return": math.nan, "frames": 1}], 0) is None


def test_a_variant_that_is_not_a_class_or_dict_is_explained():
    with pytest.raises(TypeError, match="Gatherer class or a dict"):
        Comparison({"bad": "Gatherer"}, start=False)


@pytest.mark.parametrize("clicks_reach", [True, False])
def test_in_a_kernel_the_stop_button_appears_only_where_its_click_can_arrive(monkeypatch, clicks_reach):
    import ipywidgets

    from dexterity_nb.widgets import comparison as comparison_module

    monkeypatch.setattr(comparison_module, "in_notebook", lambda: True)
    monkeypatch.setattr(comparison_module, "clicks_reach_running_cells", lambda: clicks_reach)
    comparison = Comparison({"PPO": Gatherer}, env="CartPole-v1", seeds=1, cycles=1, epochs=1,
                            batch_size=64, hyperparameters=HYPERPARAMETERS, mode="widgets")
    assert comparison.outcome == "completed" and len(comparison.results["PPO"].histories) == 1
    shown = list(comparison.widget.children) + list(comparison.widget.children[0].children)
    hints = [widget for widget in shown if isinstance(widget, ipywidgets.HTML)
             and comparison_module.COMPARISON_INTERRUPT_HINT in widget.value]
    buttons = [widget for widget in shown if isinstance(widget, ipywidgets.Button)]
    if clicks_reach:
        assert buttons == [comparison.stop_button] and hints == []
    else:
        assert comparison.stop_button is None and buttons == [] and len(hints) == 1
