"""plot_history must work with Agg and without ipywidgets (the CLI writes a PNG with it)."""

import math
import subprocess
import sys

import numpy as np
import pytest


def test_plot_history_writes_a_png_without_importing_ipywidgets(tmp_path):
    script = f"""
import sys, math, matplotlib
matplotlib.use("Agg")
from dexterity_nb.widgets import plot_history
history = [dict(cycle=c, mean_return=(math.nan if c == 2 else 10.0 * c), mean_length=5.0 * c,
                episode_returns=([] if c == 2 else [5.0 * c, 15.0 * c]), policy_loss=-0.01,
                value_loss=1.0 / c, entropy=0.69, approx_kl=0.01, frames=128 * c)
           for c in range(1, 5)]
figure = plot_history(history, title="test")
figure.savefig({str(tmp_path / 'history.png')!r})
assert "ipywidgets" not in sys.modules, "plot_history imported ipywidgets"
print(len(figure.axes))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 4
    assert (tmp_path / "history.png").read_bytes().startswith(b"\x89PNG")


def test_plot_history_of_an_empty_history_draws_placeholders():
    from dexterity_nb.widgets.plots import plot_history

    assert len(plot_history([]).axes) == 6


def _history(with_diagnostics=True):
    history = [dict(cycle=c, mean_return=10.0 * c, mean_length=5.0 * c, episode_returns=[5.0 * c, 15.0 * c],
                    policy_loss=-0.01, value_loss=1.0 / c, entropy=0.69, approx_kl=0.01, frames=128 * c)
               for c in range(1, 6)]
    if with_diagnostics:
        for entry, explained in zip(history, [-30.0, -0.5, 0.2, 0.6, math.nan]):
            entry.update(explained_variance=explained, gradient_norm=2.0 / entry["cycle"], mean_value=entry["cycle"] - 0.5)
    return history


def _texts(figure):
    return [text.get_text() for axes in figure.axes for text in (axes.texts + [axes.title])]


def test_plot_history_draws_the_diagnostics_and_the_clipping_limit():
    from dexterity_nb.widgets.plots import plot_history

    figure = plot_history(_history(), gradient_clipping=0.5)
    explained, norm = (next(axes for axes in figure.axes if axes.get_title().startswith(start))
                       for start in ("Value function", "Gradient norm"))
    drawn = explained.get_lines()[2].get_ydata()  # after the two landmark lines at 1 and 0
    np.testing.assert_array_equal(drawn[:4], [-1.0, -0.5, 0.2, 0.6])  # −30 is drawn at the −1 edge
    assert explained.get_ylim()[0] == pytest.approx(-1.05)
    lines = norm.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 1.0, 2 / 3, 0.5, 0.4])
    assert list(lines[1].get_ydata()) == [0.5, 0.5] and "clipping limit 0.5" in norm.get_legend_handles_labels()[1]
    value_lines = [line for axes in figure.axes if axes.get_ylabel() == "mean V(s)" for line in axes.get_lines()]
    np.testing.assert_array_equal(value_lines[0].get_ydata(), [0.5, 1.5, 2.5, 3.5, 4.5])
    assert "not recorded in this history" not in _texts(figure)


def test_plot_history_of_an_agent_takes_its_clipping_limit():
    from types import SimpleNamespace

    from dexterity_nb.widgets.plots import plot_history

    figure = plot_history(SimpleNamespace(history=_history(), gradient_clipping=0.25))
    norm = next(axes for axes in figure.axes if axes.get_title().startswith("Gradient norm"))
    assert "clipping limit 0.25" in norm.get_legend_handles_labels()[1]


def test_plot_history_of_an_old_history_without_the_diagnostics_says_so(tmp_path):
    from dexterity_nb.widgets.plots import plot_history

    figure = plot_history(_history(with_diagnostics=False), gradient_clipping=0.5)
    figure.savefig(tmp_path / "old.png")
    assert _texts(figure).count("not recorded in this history") == 2
    assert not any(axes.get_ylabel() == "mean V(s)" for axes in figure.axes)


def test_plot_history_of_a_curious_drill_draws_the_intrinsic_return_next_to_the_task_return():
    from dexterity_nb.widgets.plots import plot_history

    history = _history()
    for entry in history:
        entry["intrinsic_return"] = 0.1 * entry["cycle"]
    history[2]["intrinsic_return"] = math.nan  # a cycle in which no episode ended
    figure = plot_history(history)
    (intrinsic,) = [axes for axes in figure.axes if axes.get_ylabel() == "intrinsic return"]
    np.testing.assert_allclose(intrinsic.get_lines()[0].get_ydata(), [0.1, 0.2, math.nan, 0.4, 0.5])
    assert "Episode return (task) and intrinsic return" in _texts(figure)
    assert not plot_history(_history()).axes[0].get_title().endswith("intrinsic return")
