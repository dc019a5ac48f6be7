"""Tutorial 07: a callback that stops the drill once the task is solved."""

import math

import numpy as np

from dexterity_nb.agent.callbacks import Callback


class StopWhenSolved(Callback):
    def __init__(self, threshold=475.0, window=5):
        self.threshold = threshold
        self.window = window

    def on_drill_begin(self, agent):
        self.returns = []

    def on_cycle_end(self, agent, stats):
        if not math.isnan(stats["mean_return"]):
            self.returns.append(stats["mean_return"])
        recent = self.returns[-self.window:]
        if len(recent) == self.window and np.mean(recent) >= self.threshold:
            agent.stop_drill()
