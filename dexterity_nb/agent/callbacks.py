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
"""

from __future__ import annotations

import math
import os
import sys

__all__ = ["Callback", "CycleLogger", "StopAtReturn", "format_cycle_line", "memory_usage_gb"]


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
