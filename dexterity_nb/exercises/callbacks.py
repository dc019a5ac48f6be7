"""Exercise on callbacks (tutorial 07): stop a drill once the task is solved.

The callback sees every cycle's statistics; when the mean return over the last ``window`` cycles
that finished episodes reaches ``threshold``, it calls ``agent.stop_drill()``. Cycles in which no
episode ended have ``mean_return`` = NaN and are skipped: they say nothing about the return.
"""

from __future__ import annotations

import math

import numpy as np

from dexterity_nb.exercises.feedback import Checker

__all__ = ["check_stop_when_solved", "should_stop_reference"]


def should_stop_reference(returns, threshold, window):
    """After each cycle: would a correct callback have asked to stop?"""
    seen, answers = [], []
    for value in returns:
        if not math.isnan(value):
            seen.append(value)
        answers.append(len(seen) >= window and float(np.mean(seen[-window:])) >= threshold)
    return answers


class _RecordingAgent:
    """Stands in for a PPOAgent: records when ``stop_drill`` is called."""

    def __init__(self):
        self.cycle = 0
        self.drill_end_cycle = 100
        self.history = []
        self.stop_requests = []

    def stop_drill(self):
        self.stop_requests.append(self.cycle)


CASES = [
    ("returns climb past the threshold", [100.0, 300.0, 480.0, 490.0, 495.0, 500.0], 475.0, 3,
     "Average the last `window` cycles' mean_return and compare with the threshold after each cycle."),
    ("one lucky cycle is not enough", [100.0, 500.0, 120.0, 130.0], 475.0, 3,
     "Do not stop on a single good cycle: wait until `window` cycles have been seen and their mean reaches the threshold."),
    ("cycles without a finished episode (NaN) in between", [480.0, math.nan, 490.0, math.nan, 500.0, 480.0], 475.0, 3,
     "A NaN mean_return means no episode ended that cycle: skip it (np.mean of a list with NaN is NaN, and NaN ≥ x is False)."),
    ("never solved", [10.0, 20.0, math.nan, 30.0, 25.0], 475.0, 2, "Only call stop_drill when the condition holds."),
]


def check_stop_when_solved(callback_class) -> bool:
    """Check ``callback_class(threshold, window)``: a ``Callback`` that calls ``agent.stop_drill()``
    in ``on_cycle_end`` once the mean of the last ``window`` non-NaN ``mean_return`` values reaches
    ``threshold``. It is driven with a stand-in agent and made-up cycle statistics."""
    from dexterity_nb.agent.callbacks import Callback

    checker = Checker("stop-when-solved callback")
    if not (isinstance(callback_class, type) and issubclass(callback_class, Callback)):
        return checker.fail("the class itself", f"Expected a subclass of Callback, got {callback_class!r}.",
                            hint="Write `class StopWhenSolved(Callback):` and pass the class.")
    for name, returns, threshold, window, hint in CASES:
        inputs = {"mean_return per cycle": np.array(returns), "threshold": threshold, "window": window}
        checker.cases += 1
        agent = _RecordingAgent()
        try:
            callback = callback_class(threshold=threshold, window=window)
            callback.on_drill_begin(agent)
            for value in returns:
                agent.cycle += 1
                stats = {"cycle": agent.cycle, "mean_return": value, "episodes": 0 if math.isnan(value) else 4}
                agent.history.append(stats)
                callback.on_cycle_end(agent, stats)
            callback.on_drill_end(agent, agent.history)
        except Exception as error:  # noqa: BLE001
            return checker.crashed(name, error, inputs)
        wanted = [cycle for cycle, stop in enumerate(should_stop_reference(returns, threshold, window), start=1) if stop]
        first_wanted = wanted[0] if wanted else None
        first_got = agent.stop_requests[0] if agent.stop_requests else None
        if first_got != first_wanted:
            said = f"asked to stop after cycle {first_got}" if first_got else "never asked to stop"
            should = f"after cycle {first_wanted}" if first_wanted else "never"
            return checker.fail(name, f"Your callback {said}; it should stop {should}.", inputs, hint)
    return checker.passed("Pass it to agent.drill(..., callbacks=[...]) to stop as soon as the task is solved.")
