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


def _missing(axes, text):
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="gray",
              fontsize="small")
    axes.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)


def _draw_explained_variance(axes, cycles, explained):
    """Explained variance with its landmarks: 1 perfect, 0 no better than the mean return.

    Early cycles can sit far below 0 (−30 is common), which would flatten the readable range
    [−1, 1]; values below −1 are drawn at −1 with a down-pointing marker.
    """
    axes.set_title("Value function: explained variance")
    axes.set_xlabel("cycle")
    if np.all(np.isnan(explained)):
        _missing(axes, "not recorded in this history")
        return
    axes.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    axes.axhline(0.0, color="gray", linestyle="--", linewidth=1)
    below = explained < -1.0
    axes.plot(cycles, np.where(below, -1.0, explained), color=RETURN_COLOR, marker=".",
              label="1 − Var[R − V] / Var[R]")
    if np.any(below):
        axes.plot(cycles[below], np.full(int(np.sum(below)), -1.0), linestyle="none", marker="v",
                  color=RETURN_COLOR, label="below −1")
    low = -1.05 if np.any(below) else min(-0.05, float(np.nanmin(explained)) - 0.05)
    axes.set_ylim(low, 1.05)
    axes.legend(loc="lower right", fontsize="small")


def _draw_gradient_norm(axes, cycles, norms, gradient_clipping):
    """The gradient's global norm before clipping, and the clipping limit it is cut to."""
    axes.set_title("Gradient norm (before clipping)")
    axes.set_xlabel("cycle")
    if np.all(np.isnan(norms)):
        _missing(axes, "not recorded in this history")
        return
    axes.plot(cycles, norms, color=RETURN_COLOR, marker=".", label="mean ‖g‖ per minibatch")
    if gradient_clipping is not None:
        axes.axhline(gradient_clipping, color="tab:red", linestyle="--", linewidth=1,
                     label=f"clipping limit {gradient_clipping:g}")
    if np.nanmin(norms) > 0:
        # Norms are often far above the limit (30 against 0.5 without reward normalisation): a log
        # scale shows both, and how many times over the limit the gradient is.
        axes.set_yscale("log")
    axes.legend(loc="best", fontsize="small")


def draw_history(figure: Figure, history: Sequence[Mapping], title: str | None = None,
                 gradient_clipping: float | None = None) -> Figure:
    """Clear `figure` and draw the six panels of a drill: return (mean and spread of episode
    returns, with the mean value estimate on its own scale, or with curiosity the intrinsic return
    instead), episode length, policy/value loss,
    entropy/KL, explained variance, gradient norm (with the clipping limit `gradient_clipping`
    as a line when given). Histories saved before the last three keys existed still draw: those
    panels say the key was not recorded. Returns the figure."""
    figure.clear()
    grid = figure.subplots(3, 2)
    return_axes, length_axes, loss_axes, entropy_axes, explained_axes, norm_axes = grid.ravel()
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
    handles, labels = return_axes.get_legend_handles_labels()
    mean_value = series(history, "mean_value")
    if any("intrinsic_return" in entry for entry in history):
        # Curiosity: the bonus's own return per episode, on its own scale, next to the task's.
        intrinsic_axes = return_axes.twinx()
        intrinsic_axes.plot(cycles, series(history, "intrinsic_return"), color=SECOND_COLOR, marker=".", linewidth=1)
        intrinsic_axes.set_ylabel("intrinsic return", color=SECOND_COLOR)
        return_axes.set_title("Episode return (task) and intrinsic return")
        handles += intrinsic_axes.get_lines()
        labels += ["intrinsic return (curiosity bonus)"]
    elif not np.all(np.isnan(mean_value)):
        # V estimates discounted (and maybe normalised) rewards: its own scale, on the right.
        value_axes = return_axes.twinx()
        value_axes.plot(cycles, mean_value, color=SECOND_COLOR, marker=".", linewidth=1)
        value_axes.set_ylabel("mean V(s)", color=SECOND_COLOR)
        return_axes.set_title("Episode return and mean value estimate")
        handles += value_axes.get_lines()
        labels += ["mean value V(s)"]
    return_axes.legend(handles, labels, loc="upper left", fontsize="small")

    length_axes.plot(cycles, series(history, "mean_length"), color=RETURN_COLOR, marker=".")
    length_axes.set_title("Episode length")
    length_axes.set_xlabel("cycle")

    _twin_plot(loss_axes, cycles, series(history, "policy_loss"), series(history, "value_loss"),
               "policy loss", "value loss", "Losses")
    _twin_plot(entropy_axes, cycles, series(history, "entropy"), series(history, "approx_kl"),
               "entropy", "approx. KL", "Entropy and KL")
    _draw_explained_variance(explained_axes, cycles, series(history, "explained_variance"))
    _draw_gradient_norm(norm_axes, cycles, series(history, "gradient_norm"), gradient_clipping)

    for axes in grid.ravel():
        axes.grid(alpha=0.3)
        # cycles are whole numbers: no 2.5 ticks on short drills
        axes.xaxis.get_major_locator().set_params(integer=True)
    if title:
        figure.suptitle(title)
    return figure


def new_figure(width: float = 10.0, height: float = 8.5) -> Figure:
    """A figure with an Agg canvas attached, independent of pyplot and of the active backend."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_history(history: Sequence[Mapping], title: str | None = None,
                 gradient_clipping: float | None = None) -> Figure:
    """A static figure of a finished drill: `plot_history(agent).savefig("drill.png")`.

    `history` is the list of per-cycle dicts from `agent.history` / `agent.drill(...)`, or the
    agent itself, whose `gradient_clipping` then draws the clipping limit on the gradient-norm
    panel (a history alone does not hold it: pass `gradient_clipping=` to draw it).
    """
    if gradient_clipping is None:
        gradient_clipping = getattr(history, "gradient_clipping", None)
    history = list(getattr(history, "history", history))  # an agent is accepted too
    return draw_history(new_figure(), history, title=title, gradient_clipping=gradient_clipping)


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
