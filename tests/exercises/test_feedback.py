"""How every checker calls the learner's code (dexterity_nb.exercises.feedback): it leaves the
interpreter as it found it, points at the learner's own line when a library raises, and recognises
the package's own implementation however it is reached."""

import sys

import numpy as np

from dexterity_nb.agent import objectives
from dexterity_nb.exercises import check_gae
from dexterity_nb.exercises.feedback import Checker


def test_an_existing_profiler_is_restored_after_a_check_even_when_the_answer_crashes(verdict):
    def profiler(frame, event, argument):
        pass

    def crashing(*arguments):
        raise RuntimeError("boom")

    sys.setprofile(profiler)
    try:
        verdict(check_gae, crashing)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)


def test_a_crash_inside_numpy_points_at_the_learners_line(verdict):
    def reshaping(rewards, values, next_values, terminated, episode_ends, discount, lam):
        grid = np.reshape(rewards, (7, 3))  # no case has 21 rewards
        return grid

    passes, output = verdict(check_gae, reshaping)
    assert passes is False
    assert "ValueError" in output
    assert "grid = np.reshape(rewards, (7, 3))" in output, output


def test_the_package_is_recognised_through_a_module_alias_and_a_lambda():
    import dexterity_nb.agent.objectives as maths

    checker = Checker("demo", forbidden=[objectives.generalized_advantage_estimates])
    arguments = {"rewards": np.ones(2), "values": np.zeros(2), "next_values": np.zeros(2),
                 "terminated": np.zeros(2, bool), "episode_ends": np.zeros(2, bool), "discount": 0.9, "lam": 0.9}
    ok, _ = checker.call("a case", lambda *values: maths.generalized_advantage_estimates(*values)[0], arguments)
    assert ok is False


def test_package_helpers_that_are_not_the_exercise_stay_allowed():
    checker = Checker("demo", forbidden=[objectives.generalized_advantage_estimates])
    ok, result = checker.call("a case", lambda values: float(objectives.explained_variance(values, values)),
                              {"values": np.array([1.0, 2.0])})
    assert ok is True and result == 1.0


def test_something_that_is_not_a_function_is_named(verdict):
    passes, output = verdict(check_gae, np.zeros(3))
    assert passes is False
    assert "Expected a function or class to call, got ndarray" in output, output
