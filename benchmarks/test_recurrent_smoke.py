"""Smoke test of the recurrent benchmark: ``pytest benchmarks/test_recurrent_smoke.py``.

Runs ``python -m benchmarks.recurrent --quick`` (two cycles per model type, one 2,048-frame solve
run per agent) and checks that both tables and ``results.json`` are produced and well formed. It
asserts nothing about speed or solving: those belong to the full run.
"""

import json

import pytest

from benchmarks.smoke import needs_dexterity_nb, run_benchmark

CYCLE_HEADER = ["model", "gather frames/s", "update frames/s", "s/cycle", "ratio to ffn", "first cycle (compile) s",
                "build s"]
SOLVE_HEADER = ["agent / settings", "solved", "s to solve (drill calls)", "s incl. build", "frames to solve",
                "best rolling-20"]

pytestmark = needs_dexterity_nb


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recurrent")
    completed = run_benchmark("recurrent", "--quick", "--out", str(out), timeout=900)
    return completed, out


def _table_lines(stdout: str, first_title: str) -> list:
    """The header line of the table starting with `first_title` and its rows (until a blank line)."""
    lines = stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(first_title + "  "))
    table = []
    for line in lines[start:]:
        if not line.strip() or line.startswith("settings:"):
            break
        table.append(line)
    return table


def test_command_succeeds_and_prints_both_tables(quick_run):
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    cycles = _table_lines(completed.stdout, "model")
    for title in CYCLE_HEADER:
        assert title in cycles[0]
    assert [line.split()[0] for line in cycles[2:]] == ["ffn", "gru", "lstm"], cycles
    assert not any("FAILED" in line for line in cycles), cycles
    solve = _table_lines(completed.stdout, "agent / settings")
    for title in SOLVE_HEADER:
        assert title in solve[0]
    assert [line.split()[0] for line in solve[2:]] == ["gru/issue", "ffn/issue"], solve
    assert "--quick" in completed.stdout


def test_json_is_standard_and_holds_every_figure(quick_run):
    _, out = quick_run
    text = (out / "results.json").read_text()
    report = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1
    rows = {row["model"]: row for row in report["cycle_table"]}
    assert set(rows) == {"ffn", "gru", "lstm"}
    for model, row in rows.items():
        assert "error" not in row, row
        assert row["met"] in (None, "quick"), "a quick run must not claim a target"
        for key in ("gather_frames_per_second", "update_frames_per_second", "cycle_seconds", "first_cycle_seconds",
                    "build_seconds"):
            assert row[key] > 0, (model, key, row)
    assert rows["ffn"]["ratio_to_ffn"] is None and rows["gru"]["ratio_to_ffn"] > 0
    for model in ("ffn", "gru", "lstm"):
        rounds = report["results"]["cycles"][model]["rounds"]
        assert len(rounds[0]["cycle_seconds"]) == report["settings"]["cycles"], rounds
    runs = report["results"]["solve"]
    assert set(runs) == {"gru/issue", "ffn/issue"}
    for key, seeds in runs.items():
        run = seeds[0]
        assert "error" not in run, (key, run)
        assert run["learn_steps"] >= report["settings"]["budget_steps"] or run["solved"], run
        assert run["curve"] and run["build_seconds"] > 0, run
        summary = report["solve_summaries"][key]
        assert summary["runs"] == 1 and summary["solved"] in (0, 1)
    assert report["headline"] == "gru/issue"
