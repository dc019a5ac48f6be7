"""Smoke test of the construction benchmark: ``pytest benchmarks/test_construction_smoke.py``.

Runs ``python -m benchmarks.construction --quick`` (a fresh process builds 7 agents) and checks the
table and ``results.json``. It asserts no timings; the count of traces is a correctness figure.
"""

import json

from benchmarks.smoke import needs_dexterity_nb, run_benchmark

pytestmark = needs_dexterity_nb


def test_quick_run_prints_every_row_and_traces_once(tmp_path):
    completed = run_benchmark("construction", "--quick", "--out", str(tmp_path), timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for row in ("first build in a process", "later build (median of 3)", "resident memory per discarded agent (3)",
                "traces of the compiled update", "'triggered tf.function retracing' warnings"):
        assert row in completed.stdout
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["quick"] is True and len(report["later_builds"]) == 3
    assert report["first_build_seconds"] > 0 and all(seconds > 0 for seconds in report["later_builds"])
    assert report["traces"] == 1  # seven agents of one architecture, one trace of the update
    assert report["retracing_filters_removed"] >= 0 and isinstance(report["retracing_warnings"], int)
    assert (report["retracing_warnings"] > 0) == bool(report["retracing_functions"])


def test_retracing_warnings_are_counted_and_named():
    from benchmarks.construction import count_retracing_warnings, retracing_functions

    stderr = ("WARNING:tensorflow:5 out of the last 5 calls to <function NumpyForward.refresh.<locals>.<lambda> at "
              "0x7f261bebe5c0> triggered tf.function retracing. Tracing is expensive\n"
              "unrelated line\n"
              "WARNING:tensorflow:6 out of the last 6 calls to <function NumpyForward.refresh.<locals>.<lambda> at "
              "0x7f261bec5e40> triggered tf.function retracing. Tracing is expensive\n")
    assert count_retracing_warnings(stderr) == 2
    assert retracing_functions(stderr) == ["NumpyForward.refresh.<locals>.<lambda>"]
    assert count_retracing_warnings("no warning here") == 0
