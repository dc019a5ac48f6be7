"""`Comparison`: train several variants on the same env and seeds, and watch them side by side.

    from dexterity_nb.agent.gather import Gatherer
    comparison = Comparison({"PPO": Gatherer, "ε-greedy 10%": EpsilonGreedyGatherer},
                            env="CartPole-v1", seeds=3, cycles=15)
    comparison.results["PPO"].final_return

A variant is a gatherer class, or a dict with any of `gatherer`, `transformers`,
`model_builder`, `hyperparameters` (PPOAgent keywords), `epochs`, `batch_size`; other keys
are taken as PPOAgent keywords too (e.g. `{"transformers": [...], "learning_rate": 3e-4}`).
Seeds are the same for every variant, so a difference between curves is the variant's, not
luck's. The runs go seed by seed (every variant's seed 0, then seed 1, ...) so each curve
appears early; the Stop button ends the running drill at its cycle boundary and skips the rest.
Where the kernel cannot deliver that click during a drill (`clicks_reach_running_cells`), a line
in place of the button says to use the kernel's interrupt, which stops just as cleanly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.widgets.kernel_messages import (clicks_reach_running_cells, in_notebook,
                                                  process_pending_widget_messages)
from dexterity_nb.widgets.dashboard import stop_control
from dexterity_nb.widgets.plots import draw_comparison, figure_to_png, new_figure, series

__all__ = ["Comparison", "VariantResults", "variant_curve", "frames_to_reach"]

# Shown instead of the Stop button where a click could not reach a running drill.
COMPARISON_INTERRUPT_HINT = ("To stop early, interrupt the kernel (the ■ button): the running drill ends at "
                             "once with its unfinished cycle undone, the other runs are skipped, and "
                             "`.results` keeps every finished run.")

VARIANT_KEYS = ("gatherer", "transformers", "model_builder", "hyperparameters", "epochs",
                "batch_size")


def frames_to_reach(history, threshold: float):
    """Frames (env steps) at the first cycle whose mean return is ≥ threshold; None if never."""
    for entry in history:
        value = entry.get("mean_return")
        if value is not None and not math.isnan(value) and value >= threshold:
            return entry["frames"]
    return None


def final_return(history) -> float:
    """The mean return of the last cycle that finished an episode (NaN if none did)."""
    for entry in reversed(history):
        value = entry.get("mean_return")
        if value is not None and not math.isnan(value):
            return float(value)
    return math.nan


def variant_curve(histories):
    """Mean, min and max of `mean_return` across seeds at each cycle, against mean frames.

    Runs may have different lengths (one still running, or stopped early): each cycle uses
    the seeds that reached it.
    """
    histories = [history for history in histories if history]
    if not histories:
        return {"x": np.array([]), "mean": np.array([]), "low": np.array([]),
                "high": np.array([])}
    length = max(len(history) for history in histories)
    returns = np.full((len(histories), length), np.nan)
    frames = np.full((len(histories), length), np.nan)
    for row, history in enumerate(histories):
        returns[row, :len(history)] = series(history, "mean_return")
        frames[row, :len(history)] = series(history, "frames")
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cycles stay NaN gaps
            return {"x": np.nanmean(frames, axis=0), "mean": np.nanmean(returns, axis=0),
                    "low": np.nanmin(returns, axis=0), "high": np.nanmax(returns, axis=0)}


@dataclass
class VariantResults:
    """Everything one variant produced: per seed, its history, agent and wall time."""

    name: str
    config: dict
    seeds: list = field(default_factory=list)
    histories: list = field(default_factory=list)
    agents: list = field(default_factory=list)
    wall_seconds: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)

    @property
    def final_returns(self) -> list[float]:
        return [final_return(history) for history in self.histories]

    @property
    def final_return(self) -> float:
        """Mean across seeds of each run's last mean return."""
        values = [value for value in self.final_returns if not math.isnan(value)]
        return float(np.mean(values)) if values else math.nan

    def frames_to_reach(self, threshold: float) -> list:
        return [frames_to_reach(history, threshold) for history in self.histories]

    def curve(self):
        return variant_curve(self.histories)


def _checked_env_options(env_options) -> dict:
    """`env_options` as a dict of make_env keywords, refusing the two the comparison sets itself."""
    if env_options is None:
        return {}
    if not isinstance(env_options, dict):
        raise TypeError(f'env_options must be a dict of make_env keywords, e.g. {{"mask_velocity": True}}; '
                        f"got {env_options!r}.")
    reserved = sorted({"transformers", "seed"} & set(env_options))
    if reserved:
        raise ValueError(f"env_options may not set {reserved}: give transformers per variant "
                         '({"transformers": [...]}) and the seeds with seeds=.')
    return dict(env_options)


def _normalise_variant(name, variant, shared_hyperparameters):
    """A gatherer class or a config dict → a full config dict, with a clear error otherwise."""
    if isinstance(variant, type):
        variant = {"gatherer": variant}
    if not isinstance(variant, dict):
        raise TypeError(f"Variant {name!r} must be a Gatherer class or a dict with keys among "
                        f"{VARIANT_KEYS} (other keys are PPOAgent keywords); got {variant!r}.")
    config = {key: variant[key] for key in VARIANT_KEYS if key in variant}
    hyperparameters = dict(shared_hyperparameters)
    hyperparameters.update(variant.get("hyperparameters") or {})
    hyperparameters.update({key: value for key, value in variant.items()
                            if key not in VARIANT_KEYS})
    config["hyperparameters"] = hyperparameters
    config.setdefault("transformers", ())
    return config


class _RunWatcher(Callback):
    """The callback the comparison puts into each drill: live curves and the Stop button."""

    def __init__(self, comparison):
        self.comparison = comparison

    def on_drill_begin(self, agent):
        self.comparison._current_agent = agent
        if self.comparison.stop_requested:
            agent.stop_drill()

    def on_cycle_end(self, agent, stats):
        self.comparison._on_cycle_end(agent)

    def on_drill_end(self, agent, history):
        self.comparison._current_agent = None


class Comparison:
    """Train named variants on the same env and seeds; live mean-across-seeds curves, a summary
    table (final return, frames to reach `threshold`, wall time), a Stop button, `.results`.

    Parameters
    ----------
    variants : {name: Gatherer class or config dict} (see the module docstring).
    env : a gymnasium id (or anything `make_env` accepts), the same for every variant.
    env_options : other `make_env` keywords, the same for every variant: `{"mask_velocity": True}`
        for the task without its velocities, or `gymnasium.make` keywords. Not `transformers`
        (a variant's key) nor `seed` (each run is seeded from `seeds`).
    seeds : how many seeds (0, 1, ...) or an explicit list; every variant uses all of them.
    cycles, epochs, batch_size : the drill of each run (`agent.drill(cycles, epochs, batch_size)`).
    hyperparameters : PPOAgent keywords shared by all variants (a variant may override them).
    model_builder : default `get_model_builder("simple", "ffn")`.
    threshold : return to reach for the "frames to threshold" column; default: the env's
        `reward_threshold` (475 for CartPole-v1) when it has one.
    mode : "auto" (widgets in a notebook, text elsewhere), "widgets" or "text".
    start : run at once (default). With False, call `.run()` later.
    """

    def __init__(self, variants: dict, env="CartPole-v1", seeds=3, cycles: int = 15,
                 epochs: int = 3, batch_size: int = 64, hyperparameters: dict | None = None,
                 model_builder=None, threshold: float | None = None, mode: str = "auto",
                 redraw_seconds: float = 0.5, start: bool = True, env_options: dict | None = None):
        if not variants:
            raise ValueError("variants must name at least one variant, e.g. {'PPO': Gatherer}")
        if mode not in ("auto", "widgets", "text"):
            raise ValueError(f'mode must be "auto", "widgets" or "text", got {mode!r}')
        self.env = env
        self.env_options = _checked_env_options(env_options)
        self.seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        if not self.seeds:
            raise ValueError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
        self.cycles, self.epochs, self.batch_size = cycles, epochs, batch_size
        self.model_builder = model_builder
        self.configs = {name: _normalise_variant(name, variant, hyperparameters or {})
                        for name, variant in variants.items()}
        self.threshold = threshold if threshold is not None else self._env_threshold()
        self.mode = mode
        self.redraw_seconds = redraw_seconds
        self.results = {name: VariantResults(name, config)
                        for name, config in self.configs.items()}
        self.stop_requested = False
        self.outcome = None  # "completed" | "stopped" | "interrupted" after run()
        self.widget = None
        self._current_agent = None
        self._last_redraw = -math.inf
        if start:
            self.run()

    # -- set-up -------------------------------------------------------------------------------
    def _env_threshold(self):
        if not isinstance(self.env, str):
            return None
        try:
            import gymnasium

            return gymnasium.spec(self.env).reward_threshold
        except Exception:
            return None

    def _make_agent(self, config, seed):
        from dexterity_nb.agent.ppo_agent import PPOAgent
        from dexterity_nb.common.wrappers import make_env
        from dexterity_nb.models import get_model_builder

        builder = config.get("model_builder") or self.model_builder or get_model_builder(
            "simple", "ffn")
        environment = make_env(self.env, transformers=list(config["transformers"]), seed=seed, **self.env_options)
        hyperparameters = dict(config["hyperparameters"])
        hyperparameters.setdefault("verbose", False)
        agent = PPOAgent(builder, environment, seed=seed, **hyperparameters)
        if config.get("gatherer") is not None:
            agent.assign_gatherer(config["gatherer"])
        return agent

    @property
    def uses_widgets(self) -> bool:
        return self.mode == "widgets" or (self.mode == "auto" and in_notebook())

    def _build(self):
        import ipywidgets as widgets

        total = len(self.seeds) * len(self.configs)
        self.progress = widgets.IntProgress(value=0, min=0, max=total * self.cycles,
                                            bar_style="info",
                                            layout=widgets.Layout(width="320px"))
        self.progress_label = widgets.Label(value="")
        self.progress_label.add_class("dexterity-cycle-count")
        header, rows = [self.progress, self.progress_label], []
        # outside a kernel (mode="widgets") the button is kept: tests click it
        self.stop_button = stop_control(clicks_reach_running_cells() or not in_notebook(), self._on_stop_click,
                                        "End the running drill and skip the rest", COMPARISON_INTERRUPT_HINT,
                                        header, rows)
        self.status = widgets.HTML(value="")
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="760px"))
        self.table = widgets.HTML(value="")
        self.widget = widgets.VBox(
            [widgets.HBox(header), *rows, self.status, self.plot, self.table],
            layout=widgets.Layout(border="1px solid #ddd", padding="6px"))
        self.widget.add_class("dexterity-comparison")
        # 9.5 × 4.75 inches at figure_to_png's 80 dpi: 760 × 380 pixels, shown 1:1 (not blurred)
        self._figure = new_figure(9.5, 4.75)

    # -- running ------------------------------------------------------------------------------
    def run(self):
        """Train every variant on every seed (blocking); returns self."""
        if self.uses_widgets:
            self._build()
            self._set_status("Starting…")
            self._redraw(force=True)
            self._update_table()
            if in_notebook():
                from IPython.display import display

                display(self.widget)
        self.outcome = "completed"
        try:
            self._run_all(_RunWatcher(self))
        except KeyboardInterrupt:
            # an interrupt between drills (building an agent): same clean stop as inside one
            self.stop_requested = True
            self.outcome = "interrupted"
            print("Comparison interrupted between runs; results hold the finished runs.")
        self._finish()
        return self

    def _run_all(self, watcher):
        for seed_index, seed in enumerate(self.seeds):
            for name, config in self.configs.items():
                if self.stop_requested:
                    break
                self._set_status(f"Training <b>{name}</b>, seed {seed} "
                                 f"({seed_index + 1} of {len(self.seeds)})")
                agent = self._make_agent(config, seed)
                results = self.results[name]
                results.seeds.append(seed)
                results.agents.append(agent)
                results.histories.append(agent.history)
                started = time.monotonic()
                agent.drill(self.cycles, config.get("epochs", self.epochs),
                            config.get("batch_size", self.batch_size), callbacks=[watcher],
                            verbose=False)
                results.wall_seconds.append(time.monotonic() - started)
                results.outcomes.append(agent.drill_outcome)
                # the agent's history list may be replaced by the core: keep the final one
                results.histories[-1] = list(agent.history)
                if agent.drill_outcome in ("stopped", "interrupted"):
                    self.stop_requested = True
                    self.outcome = agent.drill_outcome
                if self.widget is None:
                    print(f"{name} · seed {seed}: final return "
                          f"{final_return(agent.history):.2f} after {agent.cycle} cycles, "
                          f"{results.wall_seconds[-1]:.1f} s ({agent.drill_outcome})")
                # the plot may lag a throttled redraw behind: make it show what the table counts
                self._redraw(force=True)
                self._update_table()
            if self.stop_requested:
                break

    def _on_cycle_end(self, agent):
        if self.widget is None:
            return
        self.progress.value = min(self.progress.value + 1, self.progress.max)
        self.progress_label.value = f"{self.progress.value}/{self.progress.max} cycles"
        self._redraw()
        # Clicks sent during this cycle are handled now; a Stop ends this drill right here.
        process_pending_widget_messages()

    def _on_stop_click(self, _button=None):
        """Runs inside a drill (between cycles) when the kernel delivers the click."""
        self.stop_requested = True
        if self._current_agent is not None:
            self._current_agent.stop_drill()
        self._set_stop_button("Stopping…")
        self._set_status("Stop requested: ending the running drill after this cycle.")

    def _finish(self):
        messages = {"completed": "Completed", "stopped": "Stopped by the Stop button",
                    "interrupted": "Interrupted (kernel interrupt)"}
        message = f"{messages.get(self.outcome, self.outcome)}: {self._runs_done()} runs."
        if self.widget is None:
            print(message)
            print(self.summary_text())
            return
        self._set_stop_button((self.outcome or "done").capitalize())
        self.progress.bar_style = "success" if self.outcome == "completed" else "warning"
        self._set_status(message)
        self._redraw(force=True)
        self._update_table()

    def _set_stop_button(self, description: str):
        if self.stop_button is not None:
            self.stop_button.disabled = True
            self.stop_button.description = description

    def _runs_done(self) -> int:
        return sum(len(results.outcomes) for results in self.results.values())

    # -- display ------------------------------------------------------------------------------
    def _set_status(self, html: str):
        self.status_text = html
        if self.widget is not None:
            self.status.value = html

    def _redraw(self, force: bool = False):
        if self.widget is None:
            return
        now = time.monotonic()
        if not force and now - self._last_redraw < self.redraw_seconds:
            return
        curves = {name: results.curve() for name, results in self.results.items()}
        draw_comparison(self._figure, curves, threshold=self.threshold)
        self.plot.value = figure_to_png(self._figure)
        self._last_redraw = time.monotonic()

    def summary(self) -> list[dict]:
        """One row per variant: runs (and how many were stopped early), final return (mean ± std
        across seeds), frames to the threshold (median over the seeds that reached it, and how
        many did), mean wall time per run."""
        rows = []
        for name, results in self.results.items():
            finals = [value for value in results.final_returns if not math.isnan(value)]
            reached = ([frames for frames in results.frames_to_reach(self.threshold)
                        if frames is not None] if self.threshold is not None else [])
            rows.append({
                "variant": name,
                "runs": len(results.outcomes),
                "runs_stopped_early": sum(outcome != "completed" for outcome in results.outcomes),
                "final_return": float(np.mean(finals)) if finals else math.nan,
                "final_return_std": float(np.std(finals)) if finals else math.nan,
                "frames_to_threshold": float(np.median(reached)) if reached else None,
                "seeds_reaching_threshold": len(reached),
                "wall_seconds": (float(np.mean(results.wall_seconds))
                                 if results.wall_seconds else math.nan),
            })
        return rows

    def _row_texts(self, row):
        if math.isnan(row["final_return"]):
            final = "–"
        elif row["runs"] == 1:  # a spread of one run would read "± 0.0", as if seeds agreed
            final = f"{row['final_return']:.1f}"
        else:
            final = f"{row['final_return']:.1f} ± {row['final_return_std']:.1f}"
        runs = str(row["runs"])
        if row["runs_stopped_early"]:
            # a run stopped after 1 cycle is not comparable with a finished one: say so
            runs += f" ({row['runs_stopped_early']} stopped early)"
        if self.threshold is None:
            frames = "no threshold"
        elif row["frames_to_threshold"] is None:
            frames = f"not reached (0/{row['runs']})"
        else:
            frames = (f"{row['frames_to_threshold']:,.0f} "
                      f"({row['seeds_reaching_threshold']}/{row['runs']} seeds)")
        wall = "–" if math.isnan(row["wall_seconds"]) else f"{row['wall_seconds']:.1f} s"
        return [row["variant"], runs, final, frames, wall]

    def _headers(self):
        threshold = f" {self.threshold:g}" if self.threshold is not None else ""
        return ["variant", "runs", "final return", f"frames to reach{threshold}", "wall time / run"]

    def summary_text(self) -> str:
        lines = [" | ".join(self._headers())]
        lines += [" | ".join(self._row_texts(row)) for row in self.summary()]
        return "\n".join(lines)

    def _update_table(self):
        if self.widget is None:
            return
        head = "".join(f'<th style="padding:2px 10px;text-align:left">{text}</th>'
                       for text in self._headers())
        body = "".join(
            "<tr>" + "".join(f'<td style="padding:2px 10px">{text}</td>'
                             for text in self._row_texts(row)) + "</tr>"
            for row in self.summary())
        self.table.value = f"<table><tr>{head}</tr>{body}</table>"

    def __repr__(self):
        options = f", env_options={self.env_options!r}" if self.env_options else ""
        return (f"Comparison({list(self.configs)}, env={self.env!r}{options}, seeds={self.seeds}, "
                f"cycles={self.cycles}, outcome={self.outcome!r})")
