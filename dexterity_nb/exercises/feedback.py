"""How every checker reports: one case at a time, in plain words.

A checker runs the learner's code on reference cases. At the first case that goes wrong it prints
what went in, what was expected, what came out and a hint, and returns ``False``; when every case
passes it prints one line and returns ``True``. Stopping at the first failure keeps the feedback
short: fix one thing, run the check again.
"""

from __future__ import annotations

import traceback

import numpy as np

__all__ = ["Checker", "as_array"]


def as_array(value):
    """The learner's result as a float NumPy array (accepts lists, NumPy and TensorFlow values)."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def _show(value) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, suppress_small=True, separator=", ")
    if isinstance(value, float):
        return f"{value:.4f}"
    return repr(value)


class Checker:
    """Collects the verdict of one exercise. Use ``fail``/``compare`` per case, then ``passed``."""

    def __init__(self, exercise: str):
        self.exercise = exercise
        self.cases = 0

    def fail(self, case: str, message: str, inputs: dict | None = None, hint: str | None = None) -> bool:
        lines = [f"✗ {self.exercise}: not yet. Case: {case}."]
        for name, value in (inputs or {}).items():
            lines.append(f"    {name} = {_show(value)}")
        lines.append("  " + message)
        if hint:
            lines.append(f"  Hint: {hint}")
        print("\n".join(lines))
        return False

    def crashed(self, case: str, error: BaseException, inputs: dict | None = None) -> bool:
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return self.fail(case, f"Your code raised {last}", inputs,
                         "Run your function by hand on these inputs to see where it fails.")

    def compare(self, case: str, inputs: dict, expected, got, hint: str | None = None,
                atol: float = 1e-4, rtol: float = 1e-4, mistakes=()) -> bool:
        """True if ``got`` matches ``expected`` in shape and value; otherwise print and return False.

        ``mistakes`` lists ``(what a typical mistake returns here, hint for that mistake)``: when the
        learner's result equals one of them, that mistake's hint replaces the general one.
        """
        self.cases += 1
        if got is None:
            return self.fail(case, "Your code returned None.", inputs,
                             "Finish the exercise and `return` the result (a bare `...` or a missing return gives None).")
        try:
            got_array = as_array(got)
        except (TypeError, ValueError):
            return self.fail(case, f"Expected numbers like {_show(np.asarray(expected))}, but your code returned {got!r}.", inputs, hint)
        expected = np.asarray(expected, dtype=np.float64)
        if got_array.shape == expected.shape and np.allclose(got_array, expected, atol=atol, rtol=rtol, equal_nan=True):
            return True
        matching = []
        for mistaken, mistake_hint in mistakes:
            mistaken = np.asarray(mistaken, dtype=np.float64)
            if mistaken.shape == got_array.shape and np.allclose(got_array, mistaken, atol=atol, rtol=rtol, equal_nan=True):
                matching.append(mistake_hint)
        if matching:  # several mistakes can give the same number on one case: name them all
            hint = " Or: ".join(matching)
        if got_array.shape != expected.shape:
            return self.fail(
                case,
                f"Expected shape {expected.shape}: {_show(expected)}\n  Got shape {got_array.shape}: {_show(got_array)}",
                inputs, hint,
            )
        return self.fail(case, f"Expected {_show(expected)}\n  Got      {_show(got_array)}", inputs, hint)

    def passed(self, extra: str = "") -> bool:
        print(f"✓ {self.exercise}: all {self.cases} cases pass. {extra}".rstrip())
        return True
