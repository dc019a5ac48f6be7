"""Callbacks: objects that watch a drill, named by the event they answer (as in Keras).

A drill calls, in order::

    on_drill_begin(agent)                 # agent.cycle = cycles done so far,
                                          # agent.drill_end_cycle = where this drill will end
    on_gather_end(agent)                  # between the two phases of every cycle
    on_cycle_end(agent, stats)            # after every complete cycle; stats = agent.history[-1]
    on_drill_end(agent, history)          # always, also after a stop, an interrupt or a failure;
                                          # agent.drill_outcome says which

A callback asks the drill to end by calling ``agent.stop_drill()``: the drill finishes the
current cycle, so the agent is never left half-updated. The cycle-line printer below is itself
just a callback, on by default (``drill(..., verbose=True)``); a callback with the attribute
``replaces_text_log = True`` (the live dashboard, in a notebook) turns it off.

Two loggers write the history where other tools read it, as Keras's callbacks of the same names
do: :class:`CSVLogger` (a spreadsheet row per cycle) and :class:`TensorBoard` (event files).
Both check their path when built, before any drill work, and both continue across drills.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import tempfile

__all__ = ["Callback", "CycleLogger", "StopAtReturn", "CSVLogger", "TensorBoard", "format_cycle_line",
           "memory_usage_gb", "scalar_items", "tensorboard_tag"]


class Callback:
    """Base class: override the events you need; each gets the agent and explicit data."""

    def on_drill_begin(self, agent):
        pass

    def on_gather_end(self, agent):
        """Between gathering and optimising (a live display can answer its buttons here)."""

    def on_cycle_end(self, agent, stats: dict):
        pass

    def on_drill_end(self, agent, history: list):
        pass


def memory_usage_gb() -> tuple[float, float]:
    """(resident memory of this process, total memory of the machine), in GiB."""
    resident = math.nan
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, AttributeError):
        try:
            import resource

            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
            resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30
        except ImportError:
            pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, AttributeError, OSError):
        total = math.nan
    return resident, total


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown time"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}mins"
    return f"{seconds / 3600:.1f}h"


def _seconds(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _number(value, width, digits=2):
    return f"{value:{width}.{digits}f}" if value is not None and math.isfinite(value) else f"{'-':>{width}}"


def format_cycle_line(stats: dict, total_cycles: int, seconds_left: float | None) -> str:
    """The per-cycle log line, in the founding tutorial's format.

    ``r`` mean return and ``len`` mean length of the episodes finished this cycle, ``n`` their
    number, ``loss`` [policy|value|entropy] averaged over the cycle's minibatches, ``eps`` episodes
    so far, ``lr`` learning rate, ``upd`` updates so far, ``f`` frames (env steps) so far,
    ``times`` [gather|optimize] seconds and shares, ``mem`` process/machine memory in GiB.
    """
    gather, optimize = stats["gather_seconds"], stats["optimize_seconds"]
    busy = max(gather + optimize, 1e-12)
    resident, total = memory_usage_gb()
    left = f" [{_format_duration(seconds_left)} left]" if seconds_left is not None else ""
    return (
        f"Cycle {stats['cycle']:5d}/{total_cycles}: r: {_number(stats['mean_return'], 8)}; "
        f"len: {_number(stats['mean_length'], 8)}; n: {stats['episodes']:3d}; "
        f"loss: [{_number(stats['policy_loss'], 6)}|{_number(stats['value_loss'], 8)}|{_number(stats['entropy'], 6)}]; "
        f"eps: {stats['total_episodes']:5d}; lr: {stats['learning_rate']:.2e}; upd: {stats['updates']:6d}; "
        f"f: {stats['frames'] / 1000:8.3f}k; times: [{_seconds(gather)}|{_seconds(optimize)}] "
        f"[{100 * gather / busy:.0f}|{100 * optimize / busy:.0f}]; took {stats['seconds']:.2f}s{left}; "
        f"mem: {resident:.2f}/{total:.0f};"
    )


class CycleLogger(Callback):
    """Prints the tutorial's log line after every cycle (``verbose=True``, the default)."""

    def __init__(self, stream=None):
        self.stream = stream

    def _print(self, text):
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_drill_begin(self, agent):
        self._seconds_this_drill = []
        self._print(agent.describe_drill())
        if agent.cycle == 0:
            # The untrained policy, sampled (as the workers will play it), with frozen statistics.
            evaluation = agent.evaluate(5, deterministic=False, max_steps=10_000)  # bounded even without a time limit
            resident, total = memory_usage_gb()
            self._print(
                f"Before Training: r: {_number(evaluation.returns.mean(), 8)}; len: {_number(evaluation.lengths.mean(), 8)}; "
                f"n: {len(evaluation.returns):3d}; loss: [-|-|-]; eps: {0:5d}; lr: {agent.learning_rate:.2e}; "
                f"upd: {0:6d}; f: {0:8.3f}k; times: ; mem: {resident:.2f}/{total:.0f};"
            )

    def on_cycle_end(self, agent, stats):
        self._seconds_this_drill.append(stats["seconds"])
        remaining = agent.drill_end_cycle - stats["cycle"]
        seconds_left = remaining * sum(self._seconds_this_drill) / len(self._seconds_this_drill)
        self._print(format_cycle_line(stats, agent.drill_end_cycle, seconds_left))

    def on_drill_end(self, agent, history):
        if agent.drill_outcome == "stopped":
            self._print(f"Drill stopped after cycle {agent.cycle} as asked; call drill() again to continue.")


class StopAtReturn(Callback):
    """Stop the drill once the last ``window`` training episodes average at least ``target``.

    The usual definition of *solved* (CartPole-v1: 475 over 20 episodes in the RL Zoo and its
    benchmarks). Episodes are counted across drills; the returns are the task's own rewards.
    """

    def __init__(self, target: float, window: int = 20):
        self.target, self.window = float(target), int(window)
        self.solved_at = None  # (cycle, frames) when the target was first reached

    def on_cycle_end(self, agent, stats):
        returns = [value for entry in agent.history for value in entry["episode_returns"]][-self.window:]
        if len(returns) == self.window and sum(returns) / self.window >= self.target:
            if self.solved_at is None:
                self.solved_at = (stats["cycle"], stats["frames"])
            agent.stop_drill()


# ---------------------------------------------------------------------------- loggers
def scalar_items(stats: dict) -> dict:
    """The history entry's numbers, without its per-episode lists (``episode_returns``,
    ``episode_lengths``: ``episodes`` already counts them). Booleans and strings are left out too."""
    return {key: value for key, value in stats.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def _checked_output_path(argument: str, path, kind: str) -> str:
    """``path`` as a string, after checking a ``kind`` ("file" or "folder") can be written there.

    Missing folders on the way are fine (they are made when the first row is written); what is
    refused, before any drill work: the wrong type, a file where a folder is needed (or the
    reverse), and a place this process cannot write to (found by creating a throwaway file there,
    which, unlike ``os.access``, also tells the truth for root and read-only file systems).
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"`{argument}` must be a path (str or pathlib.Path), got {path!r}.")
    path = os.path.abspath(os.fspath(path))
    if kind == "file" and os.path.isdir(path):
        raise ValueError(f"`{argument}` is the folder {path}; give a file inside it, e.g. {os.path.join(path, 'history.csv')}.")
    if kind == "folder" and os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"`{argument}` {path} is a file, not a folder; give a folder for the event files, "
                         f"e.g. {os.path.splitext(path)[0] + '_logs'}.")
    existing = os.path.dirname(path) if kind == "file" else path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"`{argument}` {path} lies inside {existing}, which is a file, not a folder; "
                         "choose a path whose parent folders are folders.")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise ValueError(f"`{argument}` {path} cannot be written: this process may not create files in {existing} "
                         f"({error.strerror}). Choose a folder you can write to, e.g. one in your home or the "
                         "current folder.") from None
    if kind == "file" and os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"`{argument}` {path} exists and is read-only; choose another file or make it writable.")
    return path


class CSVLogger(Callback):
    """Writes one row per cycle to a CSV file, like ``keras.callbacks.CSVLogger``.

    Columns: every number in the first logged history entry, in its order (``cycle``,
    ``mean_return``, …, see ``docs/CONTRACT.md``); the per-episode lists ``episode_returns`` and
    ``episode_lengths`` are left out (the ``episodes`` column counts them; ``agent.history`` keeps
    them). A key missing from a later entry leaves its cell empty; NaN (no episode finished that
    cycle) is written ``nan``, which pandas and spreadsheets read as missing.

    Every row is flushed as soon as it is written, so a killed run keeps all its finished cycles.

    Args:
        path: the CSV file. Missing parent folders are made; a folder, a path inside a file or an
            unwritable place is a ``ValueError`` here, before any drill work.
        append: ``False`` starts the file afresh when this logger first writes (later drills with
            the same logger continue it); ``True`` continues an existing file from another run or
            logger, with its header (the columns it already has) and without a second header.

    Rows are written for the cycles of the drills this logger is passed to; earlier cycles of
    the agent are not written again. With MPI it runs on rank 0 only, as every callback.
    """

    def __init__(self, path, append: bool = False):
        self.path = _checked_output_path("path", path, "file")
        if not isinstance(append, bool):
            raise TypeError(f"`append` must be True or False, got {append!r}.")
        self.append = append
        self.columns = None  # fixed by the file's header or the first row
        self._file = None
        self._started = False  # False until the first drill opened the file

    def _open(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # A later drill with this logger, or append=True, continues a file that has a header.
        continuing = (self._started or self.append) and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if continuing and self.columns is None:
            with open(self.path, newline="", encoding="utf-8") as existing:
                self.columns = next(csv.reader(existing), None)
        self._file = open(self.path, "a" if continuing else "w", newline="", encoding="utf-8")
        self._needs_header = not continuing
        self._started = True

    def on_drill_begin(self, agent):
        self.on_drill_end(agent, None)  # a file left open by a drill that never ended is closed first
        self._open()

    def on_cycle_end(self, agent, stats):
        if self._file is None:  # driven without on_drill_begin (a test, a custom loop)
            self._open()
        numbers = scalar_items(stats)
        if self.columns is None:
            self.columns = list(numbers)
        if self._needs_header:
            csv.writer(self._file).writerow(self.columns)
            self._needs_header = False
        csv.writer(self._file).writerow([_csv_cell(numbers.get(column)) for column in self.columns])
        self._file.flush()

    def on_drill_end(self, agent, history):
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_cell(value):
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


# TensorBoard groups its charts by the part of a tag before "/": related numbers sit together.
TENSORBOARD_GROUPS = {
    "episodes": ("mean_return", "mean_length", "episodes", "total_episodes"),
    "losses": ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"),
    "diagnostics": ("explained_variance", "gradient_norm", "mean_value", "behaviour_weight_mean", "behaviour_weight_max"),
    "progress": ("cycle", "frames", "updates", "learning_rate"),
    "time": ("gather_seconds", "optimize_seconds", "seconds", "steps_per_second"),
}
_GROUP_OF = {key: group for group, keys in TENSORBOARD_GROUPS.items() for key in keys}


def tensorboard_tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``"losses/policy_loss"``; curiosity's keys (``intrinsic_…``)
    under ``curiosity/``; unknown keys under ``other/``."""
    return f"{_GROUP_OF.get(key, 'curiosity' if key.startswith('intrinsic_') else 'other')}/{key}"


class TensorBoard(Callback):
    """Writes every number of the history to TensorBoard event files, like ``keras.callbacks.TensorBoard``.

    Each history key becomes a scalar chart tagged ``group/key`` (:func:`tensorboard_tag`:
    ``episodes/mean_return``, ``losses/value_loss``, ``diagnostics/explained_variance``, …).
    The x axis (the *step*) is ``frames``, the environment steps so far, as Stable-Baselines3
    logs timesteps: runs with different horizons or worker counts line up, and a drill that
    continues an agent continues the curves. ``progress/cycle`` gives the cycle of each step. A
    NaN (``mean_return`` of a cycle in which no episode finished) is skipped rather than written,
    so it leaves a gap instead of breaking TensorBoard's smoothing.

    The events are what ``tf.summary.scalar`` writes (a float32 scalar with the ``scalars``
    plugin's metadata), written with TensorFlow's own ``tf.summary.write``: the ``tensorboard``
    package is only needed to view them (``pip install tensorboard``, then
    ``tensorboard --logdir LOG_DIR``). They are flushed at the end of every drill.

    Args:
        log_dir: the folder for the event files (made if missing). A file, a path inside a file or
            an unwritable place is a ``ValueError`` here, before any drill work.

    With MPI it runs on rank 0 only, as every callback.
    """

    def __init__(self, log_dir):
        self.log_dir = _checked_output_path("log_dir", log_dir, "folder")
        self._writer = None

    def on_drill_begin(self, agent):
        if self._writer is None:
            from dexterity_nb.common.quiet_import import tensorflow as tf

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_cycle_end(self, agent, stats):
        from dexterity_nb.common.quiet_import import tensorflow as tf

        if self._writer is None:
            self.on_drill_begin(agent)
        metadata = tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))
        step = int(stats["frames"])
        with self._writer.as_default():
            for key, value in scalar_items(stats).items():
                if math.isfinite(value):
                    tf.summary.write(tensorboard_tag(key), tf.constant(value, dtype=tf.float32), step=step, metadata=metadata)

    def on_drill_end(self, agent, history):
        if self._writer is not None:
            self._writer.flush()
