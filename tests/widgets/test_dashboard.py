"""LiveDashboard without a browser: ipywidgets 8 run handlers and keep values outside a kernel."""

import math

import pytest

from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.widgets import dashboard as dashboard_module
from dexterity_nb.widgets.dashboard import CYCLE_NUMBERS, LiveDashboard, format_number
from dexterity_nb.widgets.kernel_messages import INTERRUPT_HINT


class Recorder(Callback):
    """Copies what the dashboard shows right after each cycle (it runs after the dashboard)."""

    def __init__(self, dashboard, click_after_cycle=None):
        self.dashboard, self.click_after_cycle, self.seen = dashboard, click_after_cycle, []

    def on_cycle_end(self, agent, stats):
        board = self.dashboard
        self.seen.append({"numbers": dict(board.shown_numbers), "progress": board.progress.value,
                          "count": board.count_label.value, "plot": bytes(board.plot.value),
                          "html": board.numbers.value})
        if agent.cycle == self.click_after_cycle:
            board.stop_button.click()


def test_dashboard_shows_each_cycles_numbers_from_history(make_agent):
    agent = make_agent()
    dashboard = LiveDashboard(mode="widgets", redraw_seconds=0)
    recorder = Recorder(dashboard)
    history = agent.drill(3, 1, 64, callbacks=[dashboard, recorder], verbose=False)

    assert len(recorder.seen) == 3
    plots = [seen["plot"] for seen in recorder.seen]
    assert all(plot.startswith(b"\x89PNG") for plot in plots)
    assert len(set(plots)) == 3, "the plot must be redrawn after every cycle"
    for done, (seen, stats) in enumerate(zip(recorder.seen, history), start=1):
        assert seen["progress"] == done and seen["count"] == f"{done}/3 cycles"
        for key, label, pattern in CYCLE_NUMBERS:
            assert seen["numbers"][label] == format_number(stats[key], pattern)
            assert seen["numbers"][label] in seen["html"]
    assert seen["numbers"]["cycle"] == "3"
    assert dashboard.progress.bar_style == "success"
    assert "Completed after cycle 3" in dashboard.status_text
    assert dashboard.stop_button.disabled


def test_stop_click_ends_the_drill_at_the_cycle_boundary_and_the_next_drill_continues(make_agent):
    agent = make_agent()
    dashboard = LiveDashboard(mode="widgets", redraw_seconds=0)
    history = agent.drill(10, 1, 64, callbacks=[dashboard, Recorder(dashboard, 2)],
                          verbose=False)
    assert agent.drill_outcome == "stopped"
    assert agent.cycle == 2 and len(history) == 2
    assert [entry["cycle"] for entry in history] == [1, 2]
    assert dashboard.stop_clicked_at_cycle == 2
    assert "Stopped" in dashboard.status_text and "after cycle 2" in dashboard.status_text
    assert dashboard.stop_button.description == "Stopped"

    next_dashboard = LiveDashboard(mode="widgets")
    agent.drill(2, 1, 64, callbacks=[next_dashboard], verbose=False)
    assert agent.drill_outcome == "completed"
    assert [entry["cycle"] for entry in agent.history] == [1, 2, 3, 4]
    assert next_dashboard.shown_numbers["cycle"] == "4"
    assert next_dashboard.count_label.value == "2/2 cycles"


def test_a_click_after_the_drill_ended_does_nothing(make_agent):
    agent = make_agent()
    dashboard = LiveDashboard(mode="widgets")
    agent.drill(1, 1, 64, callbacks=[dashboard], verbose=False)
    dashboard.stop_button.click()
    agent.drill(1, 1, 64, verbose=False)
    assert agent.drill_outcome == "completed" and agent.cycle == 2


def test_outside_a_notebook_the_dashboard_prints_text(make_agent, capsys):
    agent = make_agent()
    dashboard = LiveDashboard()
    agent.drill(2, 1, 64, callbacks=[dashboard], verbose=False)
    assert dashboard.widget is None
    out = capsys.readouterr().out
    assert "cycle 1/2" in out and "cycle 2/2" in out and "Completed after cycle 2" in out


def test_format_number_shows_a_dash_for_cycles_without_episodes():
    assert format_number(math.nan, "{:.2f}") == "–"
    assert format_number(1234, "{:,d}") == "1,234"


def widget_tree(widget):
    """Every widget inside `widget`, itself included."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from widget_tree(child)


@pytest.mark.parametrize("clicks_reach", [True, False])
def test_in_a_kernel_the_stop_button_appears_only_where_its_click_can_arrive(monkeypatch, clicks_reach):
    import ipywidgets

    monkeypatch.setattr(dashboard_module, "in_notebook", lambda: True)
    monkeypatch.setattr(dashboard_module, "clicks_reach_running_cells", lambda: clicks_reach)
    dashboard = LiveDashboard(mode="widgets")
    assert dashboard.has_stop_button is clicks_reach
    dashboard._build()
    buttons = [widget for widget in widget_tree(dashboard.widget) if isinstance(widget, ipywidgets.Button)]
    texts = " ".join(getattr(widget, "value", "") for widget in widget_tree(dashboard.widget)
                     if isinstance(widget, ipywidgets.HTML))
    if clicks_reach:
        assert buttons == [dashboard.stop_button]
        assert INTERRUPT_HINT not in texts
    else:
        assert buttons == [] and dashboard.stop_button is None
        assert INTERRUPT_HINT in texts and "interrupt the kernel" in INTERRUPT_HINT


def test_without_a_stop_button_a_drill_runs_and_ends_as_usual(make_agent):
    agent = make_agent()
    dashboard = LiveDashboard(mode="widgets", stop_button=False)
    agent.drill(2, 1, 64, callbacks=[dashboard], verbose=False)
    assert dashboard.stop_button is None
    assert agent.drill_outcome == "completed" and "Completed after cycle 2" in dashboard.status_text
    assert dashboard.progress.bar_style == "success"


def test_a_kernel_interrupt_ends_a_buttonless_drill_cleanly_as_the_hint_says(make_agent):
    """The hint's promise: interrupting ends the drill, undoes the unfinished cycle, keeps the rest."""
    agent = make_agent()
    dashboard = LiveDashboard(mode="widgets", stop_button=False)

    class InterruptDuringCycle3(Callback):
        def on_gather_end(self, agent):  # mid-cycle: gathered, not yet optimised
            if agent.cycle == 2:
                raise KeyboardInterrupt  # what the kernel's interrupt raises in the running cell

    agent.drill(5, 1, 64, callbacks=[dashboard, InterruptDuringCycle3()], verbose=False)
    assert agent.drill_outcome == "interrupted"
    assert agent.cycle == 2 and [entry["cycle"] for entry in agent.history] == [1, 2]
    assert "Interrupted" in dashboard.status_text and "after cycle 2" in dashboard.status_text


def test_a_curious_drill_shows_its_intrinsic_return_next_to_the_task_return():
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.models import get_model_builder

    agent = PPOAgent(get_model_builder("simple"), "MountainCar-v0", horizon=128, workers=2, seed=0, verbose=False,
                     intrinsic="counts")
    dashboard = LiveDashboard(mode="widgets", redraw_seconds=0)
    recorder = Recorder(dashboard)
    history = agent.drill(2, 1, 64, callbacks=[dashboard, recorder], verbose=False)
    shown = recorder.seen[-1]["numbers"]
    assert list(shown)[:3] == ["cycle", "mean return", "intrinsic return"]
    assert shown["intrinsic return"] == format_number(history[-1]["intrinsic_return"], "{:.3f}") != "–"
    assert shown["intrinsic return"] in recorder.seen[-1]["html"]
