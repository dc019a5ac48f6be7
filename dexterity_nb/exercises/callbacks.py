"""Exercise on callbacks (tutorial 07): stop a drill once the task is solved.

The callback sees every cycle's statistics; when the mean return over the last ``window`` cycles
that finished episodes reaches ``threshold`` (``>=``), it calls ``agent.stop_drill()``. Cycles in
which no episode ended have ``mean_return`` = NaN and are skipped: they say nothing about the
return. Each drill starts counting afresh: the same callback object serves the next ``drill()``.

The checker drives the callback with a stand-in agent that behaves like ``PPOAgent`` for a
callback: the hooks in the same order, the cycle counter and history carried across drills, and a
drill that ends after the cycle in which ``stop_drill()`` was called.
"""

from __future__ import annotations

import math

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_stop_when_solved"]


def _first_stop(returns, threshold, window):
    """The cycle (1-based) after which a correct callback stops a fresh drill, or None."""
    seen = []
    for cycle, value in enumerate(returns, start=1):
        if not math.isnan(value):
            seen.append(value)
        if len(seen) >= window and float(np.mean(seen[-window:])) >= threshold:
            return cycle
    return None


class _StandInAgent:
    """Stands in for a PPOAgent: runs drills of made-up cycles, records ``stop_drill`` calls."""

    def __init__(self):
        self.cycle = 0
        self.history = []
        self.stop_requests = []
        self.drill_end_cycle = 0
        self.drill_outcome = None

    def stop_drill(self):
        self.stop_requests.append(self.cycle)

    def drill(self, callback, returns):
        """One drill over ``returns`` (one mean return per cycle); the cycle of the drill it stopped after, or None."""
        self.drill_end_cycle, self.drill_outcome, first = self.cycle + len(returns), None, self.cycle
        requests = len(self.stop_requests)
        callback.on_drill_begin(self)
        for value in returns:
            self.cycle += 1
            episodes = [] if math.isnan(value) else [value] * 4
            stats = {"cycle": self.cycle, "mean_return": value, "episodes": len(episodes), "episode_returns": episodes,
                     "frames": 256 * self.cycle}
            self.history.append(stats)
            callback.on_gather_end(self)
            callback.on_cycle_end(self, stats)
            if len(self.stop_requests) > requests:
                self.drill_outcome = "stopped"
                break
        self.drill_outcome = self.drill_outcome or "completed"
        callback.on_drill_end(self, self.history)
        return self.cycle - first if self.drill_outcome == "stopped" else None


# (name, the drills' mean_return per cycle, threshold, window, hint if this case fails)
CASES = [
    ("returns climb past the threshold", [[100.0, 300.0, 480.0, 490.0, 495.0, 500.0]], 475.0, 3,
     "Average the last `window` cycles' mean_return and compare with the threshold after each cycle."),
    ("one lucky cycle is not enough", [[100.0, 500.0, 120.0, 130.0]], 475.0, 3,
     "Do not stop on a single good cycle: wait until `window` cycles have been seen and their mean reaches the threshold."),
    ("good from the start, but fewer than `window` cycles seen", [[480.0, 490.0, 300.0, 200.0]], 475.0, 3,
     "Don't stop before `window` values have been seen: the mean of one or two cycles is not yet the mean of `window`."),
    ("the mean lands exactly on the threshold", [[470.0, 480.0, 475.0, 100.0]], 475.0, 3,
     "The task is solved when the mean *reaches* the threshold: compare with >=, not >."),
    ("the mean stays just below the threshold", [[474.0, 476.0, 474.9, 474.0, 476.0]], 475.0, 3,
     "Stop only once the *mean* of the last `window` values is at least the threshold itself: one value above it is "
     "not enough, and neither is a mean of 474.97 rounded up (no rounding, no tolerance)."),
    ("cycles without a finished episode (NaN) in between", [[480.0, math.nan, 490.0, math.nan, 500.0, 480.0]], 475.0, 3,
     "A NaN mean_return means no episode ended that cycle: skip it, so that the window holds `window` real values "
     "(np.mean of a list with NaN is NaN, and np.nanmean over the last `window` cycles counts the NaN cycles in the window)."),
    ("never solved", [[10.0, 20.0, math.nan, 30.0, 25.0]], 475.0, 2, "Only call stop_drill when the condition holds."),
    ("a second drill with the same callback", [[480.0, 490.0, 500.0], [470.0, 480.0, 490.0, 495.0]], 475.0, 3,
     "Each drill starts afresh: forget the returns of earlier drills in on_drill_begin (the same callback object "
     "is used again when you call drill() again, e.g. to resume)."),
]


def check_stop_when_solved(callback_class) -> bool:
    """Check ``callback_class(threshold, window)``: a ``Callback`` that calls ``agent.stop_drill()``
    in ``on_cycle_end`` once the mean of the last ``window`` non-NaN ``mean_return`` values of the
    current drill reaches ``threshold``. It is built with the two arguments by position and driven
    through made-up drills by a stand-in agent."""
    from dexterity_nb.agent.callbacks import Callback, StopAtReturn

    checker = Checker("stop-when-solved callback", forbidden=[StopAtReturn.on_cycle_end, _first_stop])
    if not (isinstance(callback_class, type) and issubclass(callback_class, Callback)):
        return checker.fail("the class itself", f"Expected a subclass of Callback, got {callback_class!r}.",
                            hint="Write `class StopWhenSolved(Callback):` and pass the class.")
    for name, drills, threshold, window, hint in CASES:
        inputs = {"threshold": threshold, "window": window}
        inputs.update({f"mean_return per cycle, drill {number}": np.array(returns)
                       for number, returns in enumerate(drills, start=1)})
        ok, callback = checker.call(name, callback_class, {"threshold": threshold, "window": window}, hint)
        if not ok:
            return False
        agent = _StandInAgent()
        for number, returns in enumerate(drills, start=1):
            ok, got = checker.call(name, agent.drill, {"callback": callback, "returns": returns}, hint)
            if not ok:
                return False
            wanted = _first_stop(returns, threshold, window)
            if got != wanted:
                checker.cases += 1
                drill = f"In drill {number} your" if len(drills) > 1 else "Your"
                said = f"asked to stop after its cycle {got}" if got else "never asked to stop"
                should = f"after its cycle {wanted}" if wanted else "never"
                return checker.fail(name, f"{drill} callback {said}; it should stop {should}.", inputs, hint)
        checker.cases += 1
    return checker.passed("Pass it to agent.drill(..., callbacks=[...]) to stop as soon as the task is solved.")
