"""How every checker judges and reports: one case at a time, in plain words.

A checker runs the learner's code on cases chosen so that each typical mistake gives a different
answer. At the first case that goes wrong it prints what went in, what was expected, what came out
and a hint, and returns ``False``; when every case passes it prints one line and returns ``True``.
It never raises. Stopping at the first failure keeps the feedback short: fix one thing, run the
check again.

Every call of the learner's code goes through :meth:`Checker.call`, which

* passes the arguments **by position** (the learner may name the parameters as they like) and as
  **copies**, then compares the copies with the originals: an answer that changes an input array in
  place is refused with a hint naming that argument (the agent still needs its data afterwards);
* turns a crash into feedback that keeps the **case's own hint** and shows the exception and the
  last line of the learner's code that ran (the traceback's deepest frame outside libraries);
* says so when the placeholder ``raise NotImplementedError()`` of a graded notebook is still there;
* **refuses an answer that runs the package's own implementation** of what the exercise asks for.

How the package's own implementation is recognised: each checker names the functions the learner
is asked to write themselves (``forbidden``, e.g. ``objectives.generalized_advantage_estimates``).
While the learner's code runs, a profile hook (:func:`sys.setprofile`) watches every Python frame
that starts and records whether its code object is one of those functions' code objects. Comparing
code objects, not names, catches every route: the function passed directly, imported under another
name, reached through a module attribute, a ``functools.partial``, a subclass calling ``super()``, or
a helper of the learner's that calls it. Legitimate package helpers (``distribution.build_heads``,
``Gatherer.select_action``, ...) are not in the list and stay allowed. The hook only sees code
that runs: a ``tf.function`` traced *before* the check would replay its graph unseen, which is why
the graded notebooks' hidden tests also compare against independent, hard-coded values.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import numpy as np

__all__ = ["Checker", "as_array"]

_PACKAGE_FOLDER = str(Path(__file__).resolve().parents[1]) + os.sep


def _is_library(filename: str) -> bool:
    """True for code that is not the learner's: installed libraries and dexterity_nb itself."""
    path = str(Path(filename).resolve())
    return "site-packages" in path or "dist-packages" in path or path.startswith(_PACKAGE_FOLDER)


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


def _copy(value):
    """A copy of the arrays in ``value`` (also inside lists and tuples); other objects are passed as they are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(item) for item in value)
    return value


def _same(before, after) -> bool:
    """True if ``after`` (a copy given to the learner) still equals ``before`` (the original)."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=before.dtype.kind == "f"))
    if isinstance(before, (list, tuple)):
        return len(before) == len(after) and all(_same(a, b) for a, b in zip(before, after))
    return True


def _code_of(function):
    """The code object that runs when ``function`` is called (unwrapping decorators)."""
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function.__code__


def _qualified_name(function) -> str:
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return f"{function.__module__}.{function.__qualname__}"


def _where_it_failed(error: BaseException) -> str:
    """``line N of name: source`` for the deepest frame outside libraries, or '' if none."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if not _is_library(frame.filename)]
    if not own:  # the error came from outside the learner's code (e.g. calling something that is not a function)
        return ""
    frame = own[-1]
    source = f": {frame.line.strip()}" if frame.line else ""
    return f"line {frame.lineno} of {frame.name}{source}"


class _PackageCodeWatch:
    """Records the first forbidden code object that starts running while active (see the module docstring)."""

    def __init__(self, forbidden: dict):
        self.forbidden = forbidden  # code object -> qualified name
        self.seen = None

    def _profile(self, frame, event, argument):
        if event == "call" and self.seen is None and frame.f_code in self.forbidden:
            self.seen = self.forbidden[frame.f_code]

    def __enter__(self):
        self.previous = sys.getprofile()
        if self.forbidden:
            sys.setprofile(self._profile)
        return self

    def __exit__(self, *exception):
        if self.forbidden:
            sys.setprofile(self.previous)
        return False


class Checker:
    """Collects the verdict of one exercise. ``call`` the learner's code, ``fail``/``compare`` per case, then ``passed``.

    ``forbidden``: the package's own implementations of what the learner writes (functions or
    methods); an answer that runs one of them is refused.
    """

    def __init__(self, exercise: str, forbidden=()):
        self.exercise = exercise
        self.cases = 0
        self.forbidden = {_code_of(function): _qualified_name(function) for function in forbidden}

    def fail(self, case: str, message: str, inputs: dict | None = None, hint: str | None = None) -> bool:
        lines = [f"✗ {self.exercise}: not yet. Case: {case}."]
        for name, value in (inputs or {}).items():
            # rows of a 2-D array line up under the first one
            lines.append(f"    {name} = " + _show(value).replace("\n", "\n" + " " * (len(name) + 7)))
        lines.append("  " + message)
        if hint:
            lines.append(f"  Hint: {hint}")
        print("\n".join(lines))
        return False

    def crashed(self, case: str, error: BaseException, inputs: dict | None = None, hint: str | None = None) -> bool:
        """Report an exception of the learner's code with the case's hint and where it happened."""
        if isinstance(error, NotImplementedError):
            return self.fail(case, "Your code raised NotImplementedError: the exercise is not written yet.", inputs,
                             "Replace `raise NotImplementedError()` with your code, run that cell, then this one again.")
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        where = _where_it_failed(error)
        message = f"Your code raised {last}" + (f"\n  It happened at {where}" if where else "")
        return self.fail(case, message, inputs, hint or "Run your code by hand on these inputs to see where it fails.")

    def refuse_package_code(self, case: str, name: str, inputs: dict | None = None) -> bool:
        return self.fail(
            case, f"Your answer runs `{name}`, the package's own implementation of this exercise.", inputs,
            "Write it yourself: that is the exercise (the graded tests compare with values computed independently, "
            "so calling the package does not earn the points). Where a later cell needs a working version, it uses "
            "the package's own when yours does not pass yet.")

    def call(self, case: str, function, arguments: dict, hint: str | None = None, keywords: dict | None = None):
        """Run ``function(*arguments.values(), **keywords)`` on copies of the arguments.

        Returns ``(True, result)``, or ``(False, None)`` after reporting a crash, a changed input
        or the package's own implementation. ``arguments`` maps the names the exercise gives the
        parameters to their values, in order; the names are only used in the feedback.
        """
        if not callable(function):
            self.cases += 1
            return False, self.fail(case, f"Expected a function or class to call, got {type(function).__name__} "
                                          f"{function!r:.80}.", None,
                                    "Pass the function itself, without calling it: check_x(my_function), not "
                                    "check_x(my_function(...)).")
        copies = [_copy(value) for value in arguments.values()]
        try:
            with _PackageCodeWatch(self.forbidden) as watch, np.errstate(all="ignore"):
                result = function(*copies, **(keywords or {}))
        except Exception as error:  # noqa: BLE001 — any error of the learner's code is feedback
            self.cases += 1
            if watch.seen:
                return False, self.refuse_package_code(case, watch.seen, arguments)
            return False, self.crashed(case, error, arguments, hint)
        if watch.seen:
            self.cases += 1
            return False, self.refuse_package_code(case, watch.seen, arguments)
        for position, (name, original) in enumerate(arguments.items(), start=1):
            if not _same(original, copies[position - 1]):
                self.cases += 1
                return False, self.fail(
                    case, f"Your code changed its argument {position}, `{name}`, in place.", arguments,
                    f"Leave `{name}` as it came: compute into a new array (`x = {name} * 2`, `np.zeros_like({name})`, "
                    f"`{name}.copy()`) instead of writing into it (`{name} *= 2`, `{name}[t] = ...`, `out={name}`). "
                    "The caller still needs its data afterwards.")
        return True, result

    def one_number(self, case: str, got, inputs: dict, hint: str):
        """Where the exercise returns one number: ``(True, got)``, with a 1-element array as a 0-d one;
        ``(False, None)`` after reporting an array of several numbers (``hint`` says how to reduce it).
        A result that is not numbers at all passes through for :meth:`compare` to report."""
        if got is None:
            return True, got
        try:
            got_array = as_array(got)
        except (TypeError, ValueError):
            return True, got
        if got_array.size > 1:
            self.cases += 1
            return False, self.fail(case, f"Expected one number, got an array of shape {got_array.shape}.", inputs, hint)
        return True, (got_array.reshape(()) if got_array.size == 1 else got)

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
            if (mistaken.shape == got_array.shape and np.allclose(got_array, mistaken, atol=atol, rtol=rtol, equal_nan=True)
                    and mistake_hint not in matching):
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
