"""Static matplotlib figures of a drill's history (no ipywidgets, works with the Agg backend).

The live dashboard redraws these same panels after every cycle, and the CLI saves
`plot_history(...)` to a PNG, so there is one drawing of a drill everywhere. Figures are built
with `matplotlib.figure.Figure`, not pyplot: nothing global changes, no GUI backend is needed,
and a figure redrawn a hundred times in a notebook does not pile up in pyplot's registry.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_history", "draw_history", "draw_comparison", "figure_to_png", "series"]

RETURN_COLOR = "tab:blue"
SECOND_COLOR = "tab:orange"


def series(history: Sequence[Mapping], key: str) -> np.ndarray:
    """One history key as a float array, NaN where a cycle lacks it (e.g. no episode ended)."""
    return np.array([np.nan if entry.get(key) is None else float(entry[key]) for entry in history],
                    dtype=float)


def _return_spread(history):
    """Per-cycle min and max of the episode returns: the band behind the mean return."""
    lows, highs = [], []
    for entry in history:
        returns = entry.get("episode_returns") or []
        lows.append(min(returns) if len(returns) else np.nan)
        highs.append(max(returns) if len(returns) else np.nan)
    return np.array(lows, dtype=float), np.array(highs, dtype=float)


def _twin_plot(axes, cycles, left, right, left_label, right_label, title):
    """Two quantities on one panel with their own y scales (losses differ by orders of magnitude)."""
    axes.plot(cycles, left, color=RETURN_COLOR, marker=".", label=left_label)
    axes.set_ylabel(left_label, color=RETURN_COLOR)
    other = axes.twinx()
    other.plot(cycles, right, color=SECOND_COLOR, marker=".", label=right_label)
    other.set_ylabel(right_label, color=SECOND_COLOR)
    axes.set_title(title)
    axes.set_xlabel("cycle")


def draw_history(figure: Figure, history: Sequence[Mapping], title: str | None = None) -> Figure:
    """Clear `figure` and draw the four panels of a drill: return (mean and spread of episode
    returns), episode length, policy/value loss, entropy/KL. Returns the figure."""
    figure.clear()
    grid = figure.subplots(2, 2)
    return_axes, length_axes, loss_axes, entropy_axes = grid.ravel()
    if not history:
        for axes in grid.ravel():
            axes.text(0.5, 0.5, "waiting for the first cycle", ha="center", va="center",
                      transform=axes.transAxes, color="gray")
            axes.set_xticks([])
            axes.set_yticks([])
        if title:
            figure.suptitle(title)
        return figure

    cycles = series(history, "cycle")
    low, high = _return_spread(history)
    return_axes.fill_between(cycles, low, high, color=RETURN_COLOR, alpha=0.2, linewidth=0,
                             label="min–max of episodes")
    return_axes.plot(cycles, series(history, "mean_return"), color=RETURN_COLOR, marker=".",
                     label="mean return")
    return_axes.set_title("Episode return")
    return_axes.set_xlabel("cycle")
    return_axes.legend(loc="upper left", fontsize="small")

    length_axes.plot(cycles, series(history, "mean_length"), color=RETURN_COLOR, marker=".")
    length_axes.set_title("Episode length")
    length_axes.set_xlabel("cycle")

    _twin_plot(loss_axes, cycles, series(history, "policy_loss"), series(history, "value_loss"),
               "policy loss", "value loss", "Losses")
    _twin_plot(entropy_axes, cycles, series(history, "entropy"), series(history, "approx_kl"),
               "entropy", "approx. KL", "Entropy and KL")

    for axes in grid.ravel():
        axes.grid(alpha=0.3)
        # cycles are whole numbers: no 2.5 ticks on short drills
        axes.xaxis.get_major_locator().set_params(integer=True)
    if title:
        figure.suptitle(title)
    return figure


def new_figure(width: float = 10.0, height: float = 6.0) -> Figure:
    """A figure with an Agg canvas attached, independent of pyplot and of the active backend."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_history(history: Sequence[Mapping], title: str | None = None) -> Figure:
    """A static figure of a finished drill: `plot_history(agent.history).savefig("drill.png")`.

    `history` is the list of per-cycle dicts from `agent.history` / `agent.drill(...)`.
    """
    history = list(getattr(history, "history", history))  # an agent is accepted too
    return draw_history(new_figure(), history, title=title)


def figure_to_png(figure: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure: what the live widgets put into an `ipywidgets.Image`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def draw_comparison(figure: Figure, curves: Mapping[str, Mapping[str, np.ndarray]],
                    threshold: float | None = None, x_label: str = "frames") -> Figure:
    """Clear `figure` and draw one curve per variant: mean across seeds with a min–max band.

    `curves[name]` holds arrays `x`, `mean`, `low`, `high` (see `comparison.variant_curve`).
    """
    figure.clear()
    axes = figure.subplots()
    for index, (name, curve) in enumerate(curves.items()):
        color = f"C{index}"
        if len(curve["x"]) == 0:
            axes.plot([], [], color=color, label=f"{name} (waiting)")
            continue
        axes.fill_between(curve["x"], curve["low"], curve["high"], color=color, alpha=0.2,
                          linewidth=0)
        axes.plot(curve["x"], curve["mean"], color=color, marker=".", label=name)
    if threshold is not None:
        axes.axhline(threshold, color="gray", linestyle="--", linewidth=1,
                     label=f"threshold {threshold:g}")
    axes.set_xlabel(x_label)
    axes.set_ylabel("mean episode return")
    axes.set_title("Mean across seeds (band: min–max across seeds)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    return figure
