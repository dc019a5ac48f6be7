"""Smoke test of the curiosity benchmark: ``pytest benchmarks/test_curiosity_smoke.py``.

Runs ``python -m benchmarks.curiosity --quick`` (one seed, 4,096 frames per variant, each the CLI
in its own process) and checks the table and ``results.json``. It asserts nothing about reaching
the flag: that belongs to the full run (and to ``tests/test_learning.py``).
"""

import json

from benchmarks.smoke import needs_dexterity_nb, run_benchmark

pytestmark = needs_dexterity_nb


def test_quick_run_prints_the_table_and_writes_every_run(tmp_path):
    completed = run_benchmark("curiosity", "--quick", "--out", str(tmp_path), timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("variant"))
    assert [line.split()[0] for line in lines[header + 1:header + 4]] == ["plain", "counts", "RND"]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["quick"] is True and report["frames"] == 4096
    assert [row["variant"] for row in report["table"]] == ["plain PPO", "counts", "RND"]
    for run in report["runs"]:
        assert "error" not in run, run
        assert run["frames"] == 4096 and "--frames 4096" in run["command"]
    progress = (tmp_path / "runs" / "RND-seed0" / "progress.csv").read_text().splitlines()
    assert "intrinsic_return" in progress[0].split(",") and len(progress) == 3  # header + 2 cycles of 2,048
