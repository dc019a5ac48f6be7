"""`LiveDashboard`: watch a drill live in a notebook and stop it with one click.

    agent.drill(50, 3, 64, callbacks=[LiveDashboard()])

The drill runs on the kernel's main thread and blocks its cell, so "Run All" stays in order.
After every cycle the dashboard updates its widgets in place (one output area, no growing
scroll) and handles the clicks the kernel received meanwhile (see `kernel_messages`): a click
on Stop calls `agent.stop_drill()`, and the drill ends at that cycle boundary with every
finished cycle in `agent.history`. In a kernel where clicks cannot reach a running cell (an
ipykernel older than those tested, see `clicks_reach_running_cells`) there is no Stop button;
a line says to use the kernel's interrupt instead, which ends the drill cleanly too (the
unfinished cycle is undone). Outside a notebook it prints one line per cycle instead.
"""

from __future__ import annotations

import math
import time

from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.widgets.kernel_messages import (INTERRUPT_HINT, clicks_reach_running_cells,
                                                  in_notebook, process_pending_widget_messages)
from dexterity_nb.widgets.plots import draw_history, figure_to_png, new_figure

__all__ = ["LiveDashboard", "format_duration", "CYCLE_NUMBERS"]

# (history key, label, format) of the numbers shown for the current cycle
CYCLE_NUMBERS = (
    ("cycle", "cycle", "{:d}"),
    ("mean_return", "mean return", "{:.2f}"),
    ("mean_length", "mean length", "{:.1f}"),
    ("mean_value", "mean value", "{:.2f}"),
    ("episodes", "episodes", "{:d}"),
    ("policy_loss", "policy loss", "{:.4f}"),
    ("value_loss", "value loss", "{:.4f}"),
    ("entropy", "entropy", "{:.4f}"),
    ("approx_kl", "approx. KL", "{:.5f}"),
    ("clip_fraction", "clip fraction", "{:.3f}"),
    ("explained_variance", "explained var.", "{:.3f}"),
    ("gradient_norm", "gradient norm", "{:.3f}"),
    ("learning_rate", "learning rate", "{:.2e}"),
    ("frames", "frames", "{:,d}"),
    ("steps_per_second", "steps / s", "{:,.0f}"),
)

OUTCOME_MESSAGES = {
    "completed": "Completed",
    "stopped": "Stopped by the Stop button",
    "interrupted": "Interrupted (kernel interrupt)",
    "failed": "Failed with an error",
}


def format_duration(seconds: float) -> str:
    """`75.2` → `"1:15"`, `3725` → `"1:02:05"`; `"?"` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_number(value, pattern: str) -> str:
    """A history value as text; NaN (no episode finished this cycle) shows as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if "d}" in pattern:
        value = int(value)
    return pattern.format(value)


def stop_control(show_button: bool, on_click, tooltip: str, hint: str, header: list, rows: list):
    """A Stop button appended to ``header``; or, where a click would only arrive after the run
    (``show_button`` False), ``hint`` appended to ``rows`` saying what works instead. Returns the button or None."""
    import ipywidgets as widgets

    if show_button:
        button = widgets.Button(description="Stop", icon="stop", button_style="danger", tooltip=tooltip)
        button.on_click(on_click)
        header.append(button)
        return button
    line = widgets.HTML(value=f'<span style="color:#777">{hint}</span>')
    line.add_class("dexterity-interrupt-hint")
    rows.append(line)
    return None


class LiveDashboard(Callback):
    """A drill callback showing progress, the cycle's numbers, live plots and a Stop button.

    Parameters
    ----------
    mode : "auto" shows widgets in a notebook and prints text elsewhere; "widgets" always builds
        the widgets (tests drive them with `stop_button.click()`), "text" always prints.
    redraw_seconds : the plot is redrawn at most this often (drawing costs ~0.1 s); the numbers
        and progress bar update every cycle regardless, and the last cycle is always drawn.
    plot_width : width of the plot image in the notebook, in CSS pixels (the default, 800,
        shows the 10-inch figure at 80 dpi pixel for pixel). The figure has the six panels of
        `plot_history`: return and mean value, length, losses, entropy and KL, explained
        variance, gradient norm with the clipping limit.
    stop_button : None (default) shows the Stop button when the kernel can deliver its click
        during a drill (`clicks_reach_running_cells`; always with mode="widgets" outside a
        kernel, where tests click it) and otherwise shows `INTERRUPT_HINT` instead of a button
        that would do nothing. True or False forces either.
    """

    # The dashboard shows every cycle itself, so the core's own per-cycle print is redundant.
    replaces_text_log = True

    def __init__(self, mode: str = "auto", redraw_seconds: float = 0.5, plot_width: int = 800,
                 stop_button: bool | None = None):
        if mode not in ("auto", "widgets", "text"):
            raise ValueError(f'mode must be "auto", "widgets" or "text", got {mode!r}')
        self.mode = mode
        self.wants_stop_button = stop_button
        self.redraw_seconds = redraw_seconds
        self.plot_width = plot_width
        self.agent = None
        self.widget = None
        self.shown_numbers: dict[str, str] = {}
        self.status_text = ""
        self.redraw_count = 0
        self.stop_clicked_at_cycle = None  # the cycle after which the Stop click was handled
        self._figure = None
        self._last_redraw = -math.inf

    # -- what the user sees ------------------------------------------------------------------
    @property
    def uses_widgets(self) -> bool:
        return self.mode == "widgets" or (self.mode == "auto" and in_notebook())

    def _build(self):
        import ipywidgets as widgets

        self.progress = widgets.IntProgress(value=0, min=0, max=1, bar_style="info",
                                            layout=widgets.Layout(width="320px"))
        self.count_label = widgets.Label(value="")
        self.count_label.add_class("dexterity-cycle-count")
        self.time_label = widgets.Label(value="")
        header = [self.progress, self.count_label, self.time_label]
        rows = []
        self.stop_button = stop_control(self.has_stop_button, self._on_stop_click,
                                        "End the drill after the current cycle", INTERRUPT_HINT, header, rows)
        self.status = widgets.HTML(value="")
        self.numbers = widgets.HTML(value="")
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width=f"{self.plot_width}px"))
        self.widget = widgets.VBox(
            [widgets.HBox(header), *rows, self.status, self.numbers, self.plot],
            layout=widgets.Layout(border="1px solid #ddd", padding="6px"))
        self.widget.add_class("dexterity-dashboard")
        self._figure = new_figure()

    @property
    def has_stop_button(self) -> bool:
        """Whether the widgets include a Stop button (see the `stop_button` parameter)."""
        if self.wants_stop_button is not None:
            return bool(self.wants_stop_button)
        return clicks_reach_running_cells() if in_notebook() else True

    def _set_stop_button(self, description: str, disabled: bool):
        if self.stop_button is not None:
            self.stop_button.description = description
            self.stop_button.disabled = disabled

    def _set_status(self, text: str, color: str = "#333"):
        self.status_text = text
        if self.widget is not None:
            self.status.value = f'<b style="color:{color}">{text}</b>'

    def _show_numbers(self, stats):
        self.shown_numbers = {label: format_number(stats.get(key), pattern)
                              for key, label, pattern in CYCLE_NUMBERS}
        if "intrinsic_return" in stats:  # curiosity: its return next to the task's
            self.shown_numbers = {**dict(list(self.shown_numbers.items())[:2]),
                                  "intrinsic return": format_number(stats["intrinsic_return"], "{:.3f}"),
                                  **dict(list(self.shown_numbers.items())[2:])}
        if self.widget is not None:
            cells = "".join(
                f'<div><span style="color:#777">{label}</span><br><b>{text}</b></div>'
                for label, text in self.shown_numbers.items())
            # three tidy rows of five, instead of a row that wraps a lone number onto another line
            columns = math.ceil(len(self.shown_numbers) / 3)
            self.numbers.value = (f'<div style="display:grid;grid-template-columns:repeat('
                                  f'{columns},max-content);gap:4px 22px">{cells}</div>')

    def _redraw(self, force: bool = False):
        if self.widget is None:
            return
        now = time.monotonic()
        if not force and now - self._last_redraw < self.redraw_seconds:
            return
        draw_history(self._figure, self.agent.history,
                     gradient_clipping=getattr(self.agent, "gradient_clipping", None))
        # Replacing the Image's bytes swaps the picture in place: no flicker, no new output.
        self.plot.value = figure_to_png(self._figure)
        self.redraw_count += 1
        self._last_redraw = time.monotonic()

    # -- time ---------------------------------------------------------------------------------
    def timing(self, cycle: int):
        """(elapsed seconds, estimated seconds left) after `cycle` of this drill."""
        elapsed = time.monotonic() - self._started
        done = cycle - self.start_cycle
        remaining = self.end_cycle - cycle
        left = elapsed / done * remaining if done > 0 else math.nan
        return elapsed, left

    def _on_stop_click(self, _button=None):
        """Runs inside the drill (between cycles) when the kernel delivers the click."""
        if self.agent is None or not self._running:
            return
        self.agent.stop_drill()
        self.stop_clicked_at_cycle = self.agent.cycle
        self._set_stop_button("Stopping…", disabled=True)
        self._set_status("Stop requested: the drill ends at the end of this cycle.", "#b35900")

    # -- Callback hooks -----------------------------------------------------------------------
    def on_drill_begin(self, agent):
        self.agent = agent
        self.start_cycle = agent.cycle
        self.end_cycle = agent.drill_end_cycle
        self._started = time.monotonic()
        self._running = True
        total = self.end_cycle - self.start_cycle
        if not self.uses_widgets:
            print(f"Drill: {total} cycles, {self.start_cycle + 1} to {self.end_cycle}")
            return
        if self.widget is None:
            self._build()
        self.progress.min = 0
        self.progress.max = max(total, 1)
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.count_label.value = f"0/{total} cycles"
        self.time_label.value = "starting…"
        self._set_stop_button("Stop", disabled=False)
        self._set_status(f"Running: cycles {self.start_cycle + 1} to {self.end_cycle}")
        self._redraw(force=True)
        if in_notebook():
            from IPython.display import display

            display(self.widget)

    def on_cycle_end(self, agent, stats):
        cycle = stats.get("cycle", agent.cycle)
        done = cycle - self.start_cycle
        total = self.end_cycle - self.start_cycle
        elapsed, left = self.timing(cycle)
        self._show_numbers(stats)
        if self.widget is None:
            print(f"cycle {done}/{total} (#{cycle}) · return {self.shown_numbers['mean return']}"
                  f" · length {self.shown_numbers['mean length']}"
                  f" · {format_duration(elapsed)} elapsed, ~{format_duration(left)} left")
            return
        self.progress.value = min(done, self.progress.max)
        self.count_label.value = f"{done}/{total} cycles"
        self.time_label.value = (f"· {format_duration(elapsed)} elapsed · "
                                 f"~{format_duration(left)} left")
        self._redraw(force=cycle >= self.end_cycle)
        # Clicks sent during this cycle are handled now; a Stop ends the drill right here.
        process_pending_widget_messages()

    def on_drill_end(self, agent, history):
        self._running = False
        outcome = getattr(agent, "drill_outcome", None) or "completed"
        message = (f"{OUTCOME_MESSAGES.get(outcome, outcome)} after cycle {agent.cycle}"
                   f" ({agent.cycle - self.start_cycle} of {self.end_cycle - self.start_cycle}"
                   " cycles of this drill).")
        if self.widget is None:
            print(message)
            self.status_text = message
            return
        elapsed = time.monotonic() - self._started
        self.time_label.value = f"{format_duration(elapsed)} total"
        self._set_stop_button(outcome.capitalize(), disabled=True)
        self.progress.bar_style = {"completed": "success", "failed": "danger"}.get(outcome,
                                                                                   "warning")
        color = {"completed": "#2e7d32", "failed": "#c62828"}.get(outcome, "#b35900")
        self._set_status(message, color)
        self._redraw(force=True)
