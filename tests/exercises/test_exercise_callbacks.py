"""The stop-when-solved checker (tutorial 07): right callbacks pass however they are written; the
boundary (> instead of >=), NaN handling, premature stops and state kept across drills are named."""

import math
from collections import deque

import numpy as np
import pytest

from dexterity_nb.agent.callbacks import Callback, StopAtReturn
from dexterity_nb.exercises import check_stop_when_solved


class StopWhenSolved(Callback):
    def __init__(self, threshold=475.0, window=5):
        self.threshold, self.window = threshold, window

    def on_drill_begin(self, agent):
        self.returns = []

    def on_cycle_end(self, agent, stats):
        if not math.isnan(stats["mean_return"]):
            self.returns.append(stats["mean_return"])
        recent = self.returns[-self.window:]
        if len(recent) == self.window and np.mean(recent) >= self.threshold:
            agent.stop_drill()


class RenamedWithDeque(Callback):
    """Renamed constructor parameters, a deque, no NumPy."""

    def __init__(self, target, n):
        self.target, self.n = target, n

    def on_drill_begin(self, agent):
        self.recent = deque(maxlen=self.n)

    def on_cycle_end(self, agent, stats):
        value = stats["mean_return"]
        if value == value:  # not NaN
            self.recent.append(value)
        if len(self.recent) == self.n and sum(self.recent) / self.n >= self.target:
            agent.stop_drill()


class FromTheDrillsHistory(Callback):
    """Reads agent.history, remembering where the drill began."""

    def __init__(self, threshold, window):
        self.threshold, self.window = threshold, window

    def on_drill_begin(self, agent):
        self.first = len(agent.history)

    def on_cycle_end(self, agent, stats):
        returns = [entry["mean_return"] for entry in agent.history[self.first:] if not np.isnan(entry["mean_return"])]
        if len(returns) >= self.window and np.mean(returns[-self.window:]) >= self.threshold:
            agent.stop_drill()


@pytest.mark.parametrize("right", [StopWhenSolved, RenamedWithDeque, FromTheDrillsHistory])
def test_callback_accepts_right_answers(right, verdict):
    passes, output = verdict(check_stop_when_solved, right)
    assert passes is True, output
    assert "all 8 cases pass" in output


class StopOnOneCycle(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        if stats["mean_return"] >= self.threshold:
            agent.stop_drill()


class NaNPoisoned(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        self.returns.append(stats["mean_return"])
        if len(self.returns) >= self.window and np.mean(self.returns[-self.window:]) >= self.threshold:
            agent.stop_drill()


class NaNMeanOverCycles(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        self.returns.append(stats["mean_return"])
        if len(self.returns) >= self.window and np.nanmean(self.returns[-self.window:]) >= self.threshold:
            agent.stop_drill()


class StrictlyAbove(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        if not math.isnan(stats["mean_return"]):
            self.returns.append(stats["mean_return"])
        recent = self.returns[-self.window:]
        if len(recent) == self.window and np.mean(recent) > self.threshold:
            agent.stop_drill()


class WithoutWaitingForTheWindow(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        if not math.isnan(stats["mean_return"]):
            self.returns.append(stats["mean_return"])
        if np.mean(self.returns[-self.window:]) >= self.threshold:
            agent.stop_drill()


class RemembersEarlierDrills(StopWhenSolved):
    def __init__(self, threshold=475.0, window=5):
        super().__init__(threshold, window)
        self.returns = []

    def on_drill_begin(self, agent):
        pass  # the list of the first drill is kept


class BestValue(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        if not math.isnan(stats["mean_return"]):
            self.returns.append(stats["mean_return"])
        recent = self.returns[-self.window:]
        if len(recent) == self.window and max(recent) >= self.threshold:
            agent.stop_drill()


class NeverStops(Callback):
    def __init__(self, threshold, window):
        pass


class Placeholder(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        raise NotImplementedError()


class CrashesOnNaN(StopWhenSolved):
    def on_cycle_end(self, agent, stats):
        self.last = int(stats["mean_return"])  # int(nan) raises
        super().on_cycle_end(agent, stats)


class ThePackagesStopAtReturn(StopAtReturn):
    def __init__(self, threshold, window):
        super().__init__(threshold, window)


@pytest.mark.parametrize("wrong, words", [
    (StopOnOneCycle, "Average the last"),
    (NaNPoisoned, "NaN"),
    (NaNMeanOverCycles, "np.nanmean over the last `window` cycles"),
    (StrictlyAbove, "compare with >=, not >"),
    (WithoutWaitingForTheWindow, "Don't stop before `window` values have been seen"),
    (RemembersEarlierDrills, "In drill 2 your callback asked to stop after its cycle 1; it should stop after its cycle 3"),
    (BestValue, "Average the last"),
    (NeverStops, "never asked to stop"),
    (Placeholder, "Replace `raise NotImplementedError()`"),
    (ThePackagesStopAtReturn, "StopAtReturn.on_cycle_end`, the package's own implementation"),
    (dict, "subclass of Callback"),
])
def test_callback_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_stop_when_solved, wrong)
    assert passes is False
    assert "✗" in output and words in output, output


def test_a_crash_names_the_case_hint_and_the_line(verdict):
    passes, output = verdict(check_stop_when_solved, CrashesOnNaN)
    assert passes is False
    assert "ValueError: cannot convert float NaN to integer" in output, output
    assert 'self.last = int(stats["mean_return"])' in output, output
    assert "A NaN mean_return means no episode ended that cycle" in output, output
