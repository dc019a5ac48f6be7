"""Smoke test of the benchmark machinery: ``pytest benchmarks/test_smoke.py``.

Runs ``python -m benchmarks.run --quick`` (tiny budgets) and checks that the table, the JSON
and the plot are produced and well formed. It asserts nothing about speed: timings belong
to the full benchmark, read as ratios measured in one run.
"""

import json
from pathlib import Path

import pytest

from benchmarks.smoke import REPO_ROOT, available, run_benchmark

HEADER = ["metric", "ours", "SB3", "ratio ours/SB3", "raw limit", "target", "met?"]
ROW_KEYS = {"metric", "ours", "sb3", "ratio", "limit", "target", "met"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    completed = run_benchmark("run", "--quick", "--out", str(out), timeout=1200)
    return completed, out


def test_command_succeeds_and_prints_the_table(quick_run):
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    header_lines = [line for line in completed.stdout.splitlines() if line.startswith("metric ")]
    assert header_lines, completed.stdout
    assert header_lines[0].split("  ")[0] == "metric"
    for title in HEADER:
        assert title in header_lines[0]
    for metric in ("1. solve CartPole", "2. gathering", "2b. gathering as a share", "3. tutorial cycle", "3b.",
                   "4. peak RSS", "6a. build the first PPOAgent", "6b. build a later PPOAgent",
                   "6c. RSS growth per built-and-discarded agent", "6d. 'tf.function retracing' warnings",
                   "7. comparison panel", "8. CLI drill CartPole, process start to Solved"):
        assert metric in completed.stdout
    for target in ("ratio <= 0.3", ">= 0.5 (issue 14)", "<= 0.6 s", "<= 0.25 s", "<= 2 MiB", "<= 0.5 x before",
                   "ratio <= 0.6"):
        assert target in completed.stdout


def test_json_holds_every_row_and_raw_figure(quick_run):
    completed, out = quick_run
    report = json.loads((out / "results.json").read_text())
    assert report["quick"] is True
    assert len(report["table"]) == 15
    for row in report["table"]:
        assert ROW_KEYS <= set(row), row
        assert row["met"] in (None, "quick"), "a quick run must not claim a target"
    assert {"solve", }.issubset(report["results"])
    assert report["machine"]["cpus"] >= 1


@pytest.mark.skipif(not available("dexterity_nb.agent.ppo_agent"), reason="PPO core not importable")
def test_our_side_produced_numbers(quick_run):
    _, out = quick_run
    report = json.loads((out / "results.json").read_text())
    assert report["ours_measured"]
    results = report["results"]
    run = results["solve"]["ours"][0]
    assert "error" not in run, run
    assert run["learn_steps"] > 0 and run["curve"], run
    cycle = results["cycle_ours"]
    assert "error" not in cycle, cycle
    assert cycle["gather_steps_per_second"] > 0 and cycle["raw_env_steps_per_second"] > 0
    assert cycle["peak_rss_bytes"] > 0
    assert "error" not in results["cycle_ours_epsilon"], results["cycle_ours_epsilon"]
    scaling = results["scaling"]
    assert "error" not in scaling, scaling
    assert len(scaling["rows"]) == 3
    assert all(row["median_cycle_seconds"] > 0 for row in scaling["rows"])
    construction = results["construction"]
    assert "error" not in construction, construction
    assert len(construction["later_builds"]) == 3 and construction["first_build_seconds"] > 0
    # counted on the child's stderr; a warning always names its function
    assert isinstance(construction["retracing_warnings"], int)
    assert (construction["retracing_warnings"] > 0) == bool(construction["retracing_functions"])
    panel = results["panel"]
    assert "error" not in panel["current"], panel
    assert panel["current"]["repeats"] == 1 and panel["current"]["median_seconds"] > 0
    assert Path(panel["current"]["package"]) == REPO_ROOT / "dexterity_nb"  # the code of this checkout
    assert panel["runs"]["current"][0]["runs"] == 3  # 3 variants x 1 seed
    ours = results["start_to_solved"]["ours"]
    assert ours["runs"] == 1 and ours["solved"] == 1, results["start_to_solved"]["runs"]["ours"]


@pytest.mark.skipif(not (available("torch") and available("stable_baselines3")),
                    reason="bench extra (torch, stable-baselines3) not installed")
def test_sb3_side_produced_numbers(quick_run):
    _, out = quick_run
    report = json.loads((out / "results.json").read_text())
    assert report["sb3_measured"]
    run = report["results"]["solve"]["sb3"][0]
    assert "error" not in run, run
    assert run["learn_steps"] > 0
    assert report["results"]["cycle_sb3"]["median_cycle_seconds"] > 0
    start = report["results"]["start_to_solved"]["sb3"]
    assert start["runs"] == 1 and start["solved"] == 1, report["results"]["start_to_solved"]["runs"]["sb3"]


def test_plot_is_a_png(quick_run):
    _, out = quick_run
    assert (out / "return_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
