"""The visit-count checker (tutorial 11) accepts right answers however they are written and names the
typical mistakes."""

import numpy as np
import pytest

from dexterity_nb.agent import curiosity
from dexterity_nb.agent.curiosity import CountBonus, IntrinsicReward, grid_cells
from dexterity_nb.exercises import check_count_bonus


# -- right answers -------------------------------------------------------------------------------
class VisitCounts(IntrinsicReward):
    """The notebook's reference: grid_cells, a flat table, np.add.at."""

    def __init__(self, bins=20, weight=1.0):
        super().__init__(weight=weight)
        self.bins = bins

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.low, self.high = observation_space.low, observation_space.high
        self.counts = np.zeros(self.bins ** observation_space.shape[0], dtype=np.int64)

    def bonus(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self.low, self.high, self.bins)
        return 1.0 / np.sqrt(np.maximum(self.counts[cells], 1))

    def train(self, observations, actions, next_observations):
        np.add.at(self.counts, grid_cells(next_observations, self.low, self.high, self.bins), 1)
        return {"cells_visited": int(np.count_nonzero(self.counts))}


class BincountAndLoops(VisitCounts):
    """Counts with np.bincount, computes the bonus in a Python loop and returns a list of lists."""

    def bonus(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self.low, self.high, self.bins)
        return [[1.0 / max(self.counts[cell], 1) ** 0.5 for cell in row] for row in cells]

    def train(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self.low, self.high, self.bins)
        self.counts = self.counts + np.bincount(cells.ravel(), minlength=self.counts.size)
        return {}


class OwnGridAndDictionary(IntrinsicReward):
    """Grids by hand (with the clip at the upper bound) and counts in a dict of cell tuples."""

    def __init__(self, bins=20, weight=1.0):
        super().__init__(weight=weight)
        self.bins = bins

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.space = observation_space
        self.visits = {}

    def _cells(self, states):
        scaled = (np.asarray(states, dtype=float) - self.space.low) / (self.space.high - self.space.low)
        intervals = np.clip((scaled * self.bins).astype(int), 0, self.bins - 1)
        return [[tuple(point) for point in row] for row in intervals]

    def bonus(self, observations, actions, next_observations):
        return np.array([[1 / np.sqrt(max(self.visits.get(cell, 0), 1)) for cell in row]
                         for row in self._cells(next_observations)])

    def train(self, observations, actions, next_observations):
        for row in self._cells(next_observations):
            for cell in row:
                self.visits[cell] = self.visits.get(cell, 0) + 1
        return {"cells_visited": len(self.visits)}


@pytest.mark.parametrize("right", [VisitCounts, BincountAndLoops, OwnGridAndDictionary])
def test_accepts_right_answers_written_differently(right, verdict):
    passes, output = verdict(check_count_bonus, right)
    assert passes is True, output
    assert "✓ visit-count bonus: all" in output


def test_the_hand_worked_cases_are_what_the_package_computes():
    """The expected bonuses in COUNT_BONUS_CYCLES, worked by hand, agree with CountBonus on the same cycles."""
    from gymnasium.spaces import Box, Discrete

    from dexterity_nb.exercises.curiosity import COUNT_BONUS_CYCLES, _cycles

    package = CountBonus(bins=2)
    package.setup(Box(np.zeros(2, np.float32), np.array([2.0, 4.0], np.float32)), Discrete(3), 2)
    for (_, arrays, _, expected, _), (_, _, hand, _) in zip(_cycles(), COUNT_BONUS_CYCLES):
        assert np.allclose(expected, hand)
        assert np.allclose(package.bonus(*arrays.values()), hand)
        package.train(*arrays.values())


# -- wrong answers -------------------------------------------------------------------------------
class CountsTheCurrentState(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return super().bonus(observations, actions, observations)

    def train(self, observations, actions, next_observations):
        return super().train(observations, actions, observations)


class CountsInsideTheBonus(VisitCounts):
    """Takes the bonus, then counts in bonus() (train counts nothing): bonus() changes the table."""

    def bonus(self, observations, actions, next_observations):
        values = super().bonus(observations, actions, next_observations)
        np.add.at(self.counts, grid_cells(next_observations, self.low, self.high, self.bins), 1)
        return values

    def train(self, observations, actions, next_observations):
        return {}


class CountsBeforeTheBonus(VisitCounts):
    """Adds this cycle's visits first, then reads the table (train counts nothing)."""

    def bonus(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self.low, self.high, self.bins)
        counts = self.counts + np.bincount(cells.ravel(), minlength=self.counts.size)
        return 1.0 / np.sqrt(counts[cells])

    def train(self, observations, actions, next_observations):
        return {}


class OneOverN(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return 1.0 / np.maximum(self.counts[grid_cells(next_observations, self.low, self.high, self.bins)], 1)


class InfiniteForNewCells(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return 1.0 / np.sqrt(self.counts[grid_cells(next_observations, self.low, self.high, self.bins)])


class PlusOneUnderTheRoot(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return 1.0 / np.sqrt(self.counts[grid_cells(next_observations, self.low, self.high, self.bins)] + 1)


class NeverCounts(VisitCounts):
    def train(self, observations, actions, next_observations):
        return {"cells_visited": 0}


class FancyIndexIncrement(VisitCounts):
    def train(self, observations, actions, next_observations):
        self.counts[grid_cells(next_observations, self.low, self.high, self.bins)] += 1
        return {}


class ReturnsNothing(VisitCounts):
    def train(self, observations, actions, next_observations):
        super().train(observations, actions, next_observations)


class FlatBonus(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return np.ravel(super().bonus(observations, actions, next_observations))


class ForgetsSuperSetup(VisitCounts):
    def setup(self, observation_space, action_space, workers, communicator=None):
        self.low, self.high = observation_space.low, observation_space.high
        self.counts = np.zeros(self.bins ** observation_space.shape[0], dtype=np.int64)


class MountainCarBounds(VisitCounts):
    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.low, self.high = np.array([-1.2, -0.07]), np.array([0.6, 0.07])


class SquareTable(VisitCounts):
    """A bins × bins table: right for MountainCar's two dimensions only."""

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.counts = np.zeros(self.bins * self.bins, dtype=np.int64)


_SHARED = np.zeros(1000, dtype=np.int64)


class SharedTable(VisitCounts):
    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.counts = _SHARED


class ChangesItsInput(VisitCounts):
    def train(self, observations, actions, next_observations):
        next_observations[...] = 0.0
        return {}


class Placeholder(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        raise NotImplementedError()


class SubclassesTheCountBonus(CountBonus):
    pass


class CallsTheCountBonus(VisitCounts):
    def bonus(self, observations, actions, next_observations):
        return curiosity.count_bonus(self.counts[grid_cells(next_observations, self.low, self.high, self.bins)])


class WrapsTheCountBonus(IntrinsicReward):
    def __init__(self, bins=20, weight=1.0):
        super().__init__(weight=weight)
        self.inner = CountBonus(bins=bins)

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.inner.setup(observation_space, action_space, workers, communicator)


@pytest.mark.parametrize("wrong, words", [
    (CountsTheCurrentState, "use the *next* ones, s_{t+1}"),
    (CountsInsideTheBonus, "bonus() must not change the table"),
    (CountsBeforeTheBonus, "Your bonus already counts this cycle's visits"),
    (OneOverN, "The bonus is 1 / √N, not 1 / N"),
    (InfiniteForNewCells, "1 / √0 is infinite"),
    (NeverCounts, "nothing was counted"),
    (FancyIndexIncrement, "`counts[cells] += 1` adds 1 once per *distinct* index"),
    (PlusOneUnderTheRoot, "not 1/√5"),
    (ReturnsNothing, "expected a dict of metrics"),
    (FlatBonus, "shape (T, W) = (3, 2)"),
    (ForgetsSuperSetup, "super().setup(observation_space, action_space, workers, communicator)"),
    (MountainCarBounds, "N counts every visit of the earlier cycles"),
    (SquareTable, "the table has bins ** D cells"),
    (SharedTable, "A new instance must start from an empty table"),
    (ChangesItsInput, "changed its argument 3, `next_observations`, in place"),
    (Placeholder, "the exercise is not written yet"),
    (SubclassesTheCountBonus, "runs `dexterity_nb.agent.curiosity.CountBonus`, the package's own implementation"),
    (CallsTheCountBonus, "curiosity.count_bonus`, the package's own implementation"),
    (WrapsTheCountBonus, "the package's own implementation"),
    (VisitCounts(), "Expected the class, got an instance"),
    (np.sqrt, "Expected a subclass of IntrinsicReward"),
])
def test_rejects_typical_mistakes_with_their_hint(wrong, words, verdict):
    passes, output = verdict(check_count_bonus, wrong)
    assert passes is False
    assert "✗" in output and words in output, output


def test_a_crash_keeps_the_case_hint_and_shows_the_failing_line(verdict):
    class IndexesPastTheEnd(VisitCounts):
        def bonus(self, observations, actions, next_observations):
            cells = grid_cells(next_observations, self.low, self.high, self.bins)
            return 1.0 / np.sqrt(np.maximum(self.counts[cells + self.counts.size], 1))

    passes, output = verdict(check_count_bonus, IndexesPastTheEnd)
    assert passes is False
    assert "IndexError" in output and "self.counts[cells + self.counts.size]" in output, output
    assert "a first visit earns 1 / √max(0, 1) = 1" in output, output  # the first case's own hint
