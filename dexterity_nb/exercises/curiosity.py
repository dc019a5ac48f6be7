"""Exercise on curiosity (tutorial 11): a visit-count bonus, the simplest intrinsic reward.

The learner writes an :class:`~dexterity_nb.agent.curiosity.IntrinsicReward` subclass that counts
how often each cell of a grid over the observations was reached and pays

    b_t = 1 / √max(N(cell(s_{t+1})), 1)

for every step, where N counts the visits of *earlier* cycles only: ``bonus`` reads the table,
``train`` adds the cycle's visits afterwards (the agent calls them in that order, once per cycle).
The cell of an observation comes from the package's :func:`~dexterity_nb.agent.curiosity.grid_cells`,
which the learner may use: the exercise is the counting and the bonus, not the gridding.

Refused: subclassing the package's ``CountBonus`` or running its methods, and
``curiosity.count_bonus`` (the 1/√N itself).

The main cases are worked by hand on the 2 × 2 grid over [0, 2] × [0, 4] (``bins = 2``): a point
(x, y) lies in cell i_x + 2·i_y with i_x = 0 for x < 1 (else 1) and i_y = 0 for y < 2 (else 1),
called A = 0 (left, low), B = 1 (right, low), C = 2 (left, high) and D = 3 (right, high). Each
visit is a different point inside its cell, so that counting exact observations instead of cells
gives another answer.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_count_bonus", "COUNT_BONUS_CYCLES"]

_LOW, _HIGH, _BINS, _WORKERS = [0.0, 0.0], [2.0, 4.0], 2, 2
_CELL = {"A": 0, "B": 1, "C": 2, "D": 3}
# Points inside each cell; the k-th visit of a cell (over all cycles) lands on its k-th point.
_POINTS = {
    "A": [(0.2, 0.5), (0.7, 1.5), (0.4, 0.1), (0.9, 1.9), (0.1, 1.2), (0.6, 0.8), (0.3, 0.3)],
    "B": [(1.5, 1.0), (1.2, 0.3), (1.8, 1.7), (1.1, 0.6)],
    "C": [(0.5, 3.0), (0.3, 2.4), (0.8, 3.9)],
    "D": [(1.5, 3.0), (1.9, 2.2), (1.3, 3.6), (2.0, 4.0)],  # the last one lies on the upper bound of both dimensions
}
_START = (1.6, 3.3)  # s_0 of every worker in cycle 1: in D, which no next state of cycle 1 reaches

# Three cycles of T = 3 steps and W = 2 workers: (name, cells of the next observations s_{t+1} (one row per
# step), the bonus worked by hand from the visits N counted before the cycle, the case's hint).
COUNT_BONUS_CYCLES = [
    # N = 0 everywhere: every step is a first visit, b = 1.              After it: A 4, B 2, C 0, D 0.
    ("cycle 1: a fresh table, every next state is a first visit", [["A", "A"], ["B", "A"], ["A", "B"]],
     [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
     "Before any train() every cell has N = 0, and a first visit earns 1 / √max(0, 1) = 1."),
    # A: 1/√4 = 0.5, B: 1/√2 = 0.7071, C and D: N = 0 → 1.                After it: A 6, B 3, C 2, D 1.
    ("cycle 2: cycle 1 reached A 4 times and B twice", [["A", "C"], ["B", "D"], ["C", "A"]],
     [[0.5, 1.0], [2 ** -0.5, 1.0], [1.0, 0.5]],
     "N counts every visit of the earlier cycles: A has N = 4 (b = 1/√4 = 0.5), B has N = 2, C and D none."),
    # A: 1/√6 = 0.4082, B: 1/√3 = 0.5774, C: 1/√2 = 0.7071, D: 1/√1 = 1 (also the point (2, 4) on the upper bound).
    ("cycle 3: after two cycles, A 6, B 3, C 2 and D 1 visits", [["A", "B"], ["C", "D"], ["D", "D"]],
     [[6 ** -0.5, 3 ** -0.5], [2 ** -0.5, 1.0], [1.0, 1.0]],
     "N adds up over all earlier cycles. The point (2, 4) lies on the upper bound: it belongs to the last "
     "interval of each dimension (grid_cells puts it there), so to cell D."),
]

_BONUS_HINT = ("bonus(observations, actions, next_observations) returns 1 / √max(N, 1) for the cell of each *next* "
               "observation, with N read from the table as it was before this cycle; shape (T, W).")
_SETUP_HINT = ("The agent calls setup(observation_space, action_space, workers, communicator). In it, after "
               "`super().setup(...)`, make the table, one zero count per cell: "
               "`np.zeros(self.bins ** D)` with D = observation_space.shape[0]; keep observation_space.low and "
               ".high for grid_cells.")
_TRAIN_HINT = ("train(observations, actions, next_observations) adds 1 to the count of the cell of every next "
               "observation of the cycle (T·W visits) and returns a dict of metrics, e.g. "
               "{\"cells_visited\": the number of cells with N > 0}.")
_TWICE_HINT = ("bonus() must not change the table: it only reads what the earlier cycles counted. Count in train(), "
               "which the agent calls after bonus().")
_FRESH_HINT = ("A new instance must start from an empty table: create it in setup() on `self`, not as a class "
               "attribute (shared by every instance) or a module variable.")
_GRID_HINT = ("Use the bins and bounds setup() receives: the table has bins ** D cells (D = "
              "observation_space.shape[0]; here other numbers than MountainCar's) and the cells come from "
              "grid_cells(next_observations, observation_space.low, observation_space.high, self.bins).")


def _cycles():
    """Each cycle's name, arrays (as the agent passes them), cell indices, hand-worked bonus and hint."""
    used = dict.fromkeys(_POINTS, 0)
    cycles, previous = [], np.array([_START] * _WORKERS, dtype=np.float32)
    for name, cells, expected, hint in COUNT_BONUS_CYCLES:
        rows = []
        for row in cells:
            rows.append([_POINTS[cell][used[cell]] for cell in row])
            for cell in row:
                used[cell] += 1
        next_observations = np.array(rows, dtype=np.float32)
        # the agent's layout: s_t of step t is s_{t+1} of step t − 1; the first row continues the previous cycle
        observations = np.concatenate([previous[None], next_observations[:-1]])
        actions = np.array([[(step + worker) % 3 for worker in range(_WORKERS)] for step in range(len(cells))])
        previous = next_observations[-1]
        arrays = {"observations": observations, "actions": actions, "next_observations": next_observations}
        indices = np.array([[_CELL[cell] for cell in row] for row in cells])
        cycles.append((name, arrays, indices, np.array(expected), hint))
    return cycles


def _cell_of(point) -> int:
    return int(point[0] >= 1.0) + 2 * int(point[1] >= 2.0)


def _bonus_of(counts):
    return 1.0 / np.sqrt(np.maximum(counts, 1.0))


def _mistakes(cycles, index):
    """(what a typical slip returns at cycle ``index``, its hint), worked out from the cells."""
    earlier = cycles[:index]
    cells = cycles[index][2]

    def visits(indices):
        return np.bincount(np.ravel(indices).astype(int), minlength=4).astype(float)

    before = visits([cycle[2] for cycle in earlier]) if earlier else np.zeros(4)
    current = (visits([[_cell_of(point) for row in cycle[1]["observations"] for point in row] for cycle in earlier])
               if earlier else np.zeros(4))
    distinct = sum((visits(cycle[2]) > 0).astype(float) for cycle in earlier) if earlier else np.zeros(4)
    mistakes = [
        (1.0 / np.sqrt(before + 1.0)[cells],
         "The bonus is 1 / √N for a cell visited N ≥ 1 times (a cell reached 4 times earns 1/2, not 1/√5); "
         "max(N, 1) only stands in for N = 0."),
        (1.0 / np.maximum(before, 1.0)[cells],
         "The bonus is 1 / √N, not 1 / N: take the square root (np.sqrt), so that it shrinks slowly as a cell "
         "grows familiar."),
        (_bonus_of(before + visits(cells))[cells],
         "Your bonus already counts this cycle's visits. The agent calls bonus() first, with the table of the "
         "earlier cycles, and train() afterwards: read the counts in bonus(), add to them only in train()."),
    ]
    current_cells = np.array([[_cell_of(point) for point in row] for row in cycles[index][1]["observations"]])
    for counted, paid in ((current, cells), (current, current_cells), (before, current_cells)):
        mistakes.append((_bonus_of(counted)[paid],
                         "You use the current observations s_t; use the *next* ones, s_{t+1} (next_observations), "
                         "both to count and to pay: the bonus rewards the step that reached a state."))
    if earlier:
        mistakes += [
            (np.ones(cells.shape), "Every step still earns 1: nothing was counted. Add the cycle's visits to the "
                                   "table in train() (the agent calls it after bonus())."),
            (_bonus_of(distinct)[cells],
             "Each cell is counted once per cycle however often it was reached: `counts[cells] += 1` adds 1 once per "
             "*distinct* index. Use `np.add.at(counts, cells, 1)` or "
             "`counts += np.bincount(cells.ravel(), minlength=counts.size)`."),
        ]
    return mistakes


def _refusal(checker, your_class):
    """False after reporting a class that cannot be the answer; None if it may be checked."""
    from dexterity_nb.agent.curiosity import CountBonus, IntrinsicReward

    if isinstance(your_class, IntrinsicReward):
        return checker.fail("the class itself", f"Expected the class, got an instance: {your_class!r}.",
                            hint="Pass the class without calling it: check_count_bonus(VisitCounts).")
    if not (isinstance(your_class, type) and issubclass(your_class, IntrinsicReward)):
        return checker.fail("the class itself", f"Expected a subclass of IntrinsicReward, got {your_class!r}.",
                            hint="Write `class VisitCounts(IntrinsicReward):` and pass the class (no parentheses).")
    if issubclass(your_class, CountBonus):
        return checker.refuse_package_code("the class itself (a subclass of CountBonus)",
                                           "dexterity_nb.agent.curiosity.CountBonus")
    return None


def _set_up(checker, your_class, case, bins, low, high, workers, hint=_SETUP_HINT):
    """``(True, instance)`` built and set up as the agent does it, or ``(False, None)`` after a report."""
    import gymnasium

    ok, instance = checker.call(case + " (building it)", your_class, {"bins": bins},
                                "The checker builds your class with the bins by position, VisitCounts(2): keep "
                                "the __init__(self, bins=20, weight=1.0) the notebook gives.")
    if not ok:
        return False, None
    space = gymnasium.spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)
    arguments = {"observation_space": space, "action_space": gymnasium.spaces.Discrete(3), "workers": workers,
                 "communicator": None}
    ok, _ = checker.call(case + " (setup)", instance.setup, arguments, hint)
    if not ok:
        return False, None
    if getattr(instance, "workers", 0) != workers:
        checker.cases += 1
        return False, checker.fail(
            case + " (setup)", f"After setup(observation_space, action_space, {workers}, None) the instance's "
                               f"`workers` is {getattr(instance, 'workers', None)!r}, not {workers}.",
            {"observation_space": space},
            "Begin setup with `super().setup(observation_space, action_space, workers, communicator)`: the agent "
            "relies on what it sets up.")
    return True, instance


def _judge_bonus(checker, instance, case, arrays, expected, shown, hint, mistakes=(), crash_hint=None) -> bool:
    """Call ``bonus`` on ``arrays`` and compare with ``expected``; ``shown`` are the inputs printed on failure."""
    ok, got = checker.call(case, instance.bonus, arrays, crash_hint or hint)
    if not ok:
        return False
    try:
        values = as_array(got)
    except (TypeError, ValueError):
        values = None
    if values is not None and values.shape == expected.shape and not np.all(np.isfinite(values)):
        checker.cases += 1
        return checker.fail(case, f"Expected {_rounded(expected)}\n  Got      {values.tolist()}", shown,
                            "A cell never visited has N = 0, and 1 / √0 is infinite (the agent refuses it): use "
                            "1 / √max(N, 1), so that a first visit earns 1.")
    if values is not None and values.shape != expected.shape:
        hint = (f"Return one bonus per step and worker, shape (T, W) = {expected.shape}: grid_cells(next_observations, "
                "low, high, bins) keeps the (T, W) layout; index the table with it.")
    return checker.compare(case, shown, expected, got, hint, mistakes=mistakes)


def _rounded(values):
    return np.round(values, 4).tolist()


def _judge_train(checker, instance, case, arrays, shown, hint=_TRAIN_HINT) -> bool:
    ok, metrics = checker.call(case + ", train()", instance.train, arrays, hint)
    if not ok:
        return False
    checker.cases += 1
    if not isinstance(metrics, dict):
        return checker.fail(case + ", train()", f"train() returned {metrics!r}; expected a dict of metrics.", shown,
                            "End train() with `return {\"cells_visited\": ...}` (or `return {}`): the agent records "
                            "each entry in the history as intrinsic_<name>.")
    for name, value in metrics.items():
        try:
            float(value)
        except (TypeError, ValueError):
            return checker.fail(case + ", train()", f"train() returned the metric {name!r} = {value!r}, which is "
                                "not a number.", shown, "Each metric is one number, e.g. int(np.count_nonzero(counts)).")
    return True


def check_count_bonus(your_class) -> bool:
    """Check ``your_class``, an ``IntrinsicReward`` subclass paying 1 / √max(N, 1) per visit of a grid cell.

    It is built as ``your_class(bins)`` and set up as the agent does it,
    ``setup(observation_space, action_space, workers, None)``. Then, cycle after cycle, ``bonus`` must
    return the ``(T, W)`` values 1 / √max(N, 1) of the cells of the next observations, N counting the
    visits of the earlier cycles (calling it twice changes nothing), and ``train`` must add the cycle's
    visits and return a dict of metrics. Cells: :func:`~dexterity_nb.agent.curiosity.grid_cells` over the
    observation space's bounds; other bins, bounds and dimensions are tried too.
    """
    from dexterity_nb.agent import curiosity

    checker = Checker("visit-count bonus", forbidden=[curiosity.count_bonus, curiosity.CountBonus.__init__,
                                                      curiosity.CountBonus.setup, curiosity.CountBonus.bonus,
                                                      curiosity.CountBonus.train])
    refused = _refusal(checker, your_class)
    if refused is not None:
        return refused
    case = f"a 2 × 2 grid over [0, 2] × [0, 4], {_WORKERS} workers"
    ok, instance = _set_up(checker, your_class, case, _BINS, _LOW, _HIGH, _WORKERS)
    if not ok:
        return False
    cycles = _cycles()
    counts = np.zeros(4, dtype=int)
    for index, (name, arrays, cells, expected, hint) in enumerate(cycles):
        shown = {"next_observations": arrays["next_observations"], "their cells (A = 0, B = 1, C = 2, D = 3)": cells,
                 "N before this cycle (A, B, C, D)": counts.copy()}
        if not _judge_bonus(checker, instance, name, arrays, expected, shown, hint, _mistakes(cycles, index)):
            return False
        if not _judge_bonus(checker, instance, f"{name}, bonus() called a second time before train()", arrays,
                            expected, shown, _TWICE_HINT):
            return False
        if not _judge_train(checker, instance, name, arrays, shown):
            return False
        counts += np.bincount(cells.ravel(), minlength=4)
    if not (_one_dimension(checker, your_class) and _three_dimensions(checker, your_class)):
        return False
    return checker.passed("The agent adds β · b_t to the task's reward at every step.")


def _two_cycles(checker, your_class, case, bins, low, high, first_cells, second_cells, expected) -> bool:
    """A new instance: the first cycle earns 1 everywhere, the second ``expected`` after training on the first."""
    workers = len(first_cells)
    ok, instance = _set_up(checker, your_class, case, bins, low, high, workers, _GRID_HINT)
    if not ok:
        return False
    start = np.full((1, workers, len(low)), 0.5, np.float32)
    first = {"observations": start, "actions": np.zeros((1, workers), np.int64),
             "next_observations": np.array([first_cells], np.float32)}
    second = {"observations": first["next_observations"].copy(), "actions": np.ones((1, workers), np.int64),
              "next_observations": np.array([second_cells], np.float32)}
    return (_judge_bonus(checker, instance, case + ", cycle 1", first, np.ones((1, workers)),
                         {"next_observations": first["next_observations"]}, _FRESH_HINT, crash_hint=_GRID_HINT)
            and _judge_train(checker, instance, case + ", cycle 1", first,
                             {"next_observations": first["next_observations"]}, _GRID_HINT)
            and _judge_bonus(checker, instance, case + ", cycle 2", second, np.array([expected]),
                             {"cycle 1's next_observations": first["next_observations"],
                              "next_observations": second["next_observations"]}, _GRID_HINT))


def _one_dimension(checker, your_class) -> bool:
    # 4 bins over [−1, 1]: intervals [−1, −0.5), [−0.5, 0), [0, 0.5), [0.5, 1]. Cycle 1 reaches −0.9, 0.1, 0.2
    # and 0.9 (cells 0, 2, 2, 3); cycle 2 reaches 0.3, −0.2, 0.95, −0.7 (cells 2, 1, 3, 0): N = 2, 0, 1, 1.
    return _two_cycles(checker, your_class, "a new instance, 1 dimension, 4 bins over [−1, 1], 4 workers", 4, [-1.0],
                       [1.0], [[-0.9], [0.1], [0.2], [0.9]], [[0.3], [-0.2], [0.95], [-0.7]],
                       [2 ** -0.5, 1.0, 1.0, 1.0])


def _three_dimensions(checker, your_class) -> bool:
    # 2 bins over [0, 1]³, 8 cells numbered i_0 + 2·i_1 + 4·i_2. Cycle 1 reaches cell 0 twice and cell 7 once;
    # cycle 2 reaches cells 0, 7 and 5 (0.9, 0.1, 0.9): N = 2, 1, 0.
    return _two_cycles(checker, your_class, "3 dimensions, 2 bins each over [0, 1]: 8 cells, 3 workers", 2,
                       [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [[0.1, 0.1, 0.1], [0.2, 0.3, 0.1], [0.9, 0.9, 0.9]],
                       [[0.3, 0.2, 0.4], [0.6, 0.7, 0.8], [0.9, 0.1, 0.9]], [2 ** -0.5, 1.0, 1.0])
