"""Smoke tests of the comparison-panel benchmark and of the start-to-solved clock.

``python -m benchmarks.panel --quick --package-root DIR`` must time the ``dexterity_nb`` in DIR (here a
copy of this checkout's package), and refuse a folder without the package. ``time_to_line`` is checked
on a tiny Python child. No timing is asserted.
"""

import json
import shutil
import sys
from pathlib import Path

from benchmarks.smoke import REPO_ROOT, needs_dexterity_nb, run_benchmark
from benchmarks.start_to_solved import time_to_line


@needs_dexterity_nb
def test_package_root_measures_the_code_in_that_folder(tmp_path):
    root = tmp_path / "other-checkout"
    shutil.copytree(REPO_ROOT / "dexterity_nb", root / "dexterity_nb",
                    ignore=shutil.ignore_patterns("__pycache__"))
    completed = run_benchmark("panel", "--quick", "--package-root", str(root), "--out", str(tmp_path / "out"),
                              timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert Path(report["package"]) == (root / "dexterity_nb").resolve()
    assert report["repeats"][0]["runs"] == 3 and report["repeats"][0]["outcome"] == "completed"


def test_package_root_without_the_package_is_refused(tmp_path):
    completed = run_benchmark("panel", "--quick", "--package-root", str(tmp_path), "--out", str(tmp_path / "out"),
                              timeout=600)
    assert completed.returncode != 0
    assert "holds no dexterity_nb/__init__.py" in completed.stdout + completed.stderr


def _python(code: str) -> list:
    return [sys.executable, "-c", code]


def test_time_to_line_stops_the_child_at_its_line(tmp_path):
    child = "import time\nprint('cycle 1')\nprint('Solved: yes')\ntime.sleep(60)\nprint('printed later')"
    result = time_to_line(_python(child), "Solved", tmp_path, {}, tmp_path / "log.txt", timeout=120,
                          stop_at_line=True)
    assert result["seconds"] is not None and result["exit_code"] != 0  # terminated during its sleep
    output = (tmp_path / "log.txt").read_text().split("--- stdout and stderr", 1)[1]  # after the command line
    assert "Solved: yes" in output and "printed later" not in output


def test_time_to_line_without_the_line_reports_none(tmp_path):
    result = time_to_line(_python("print('never solved')"), "Solved", tmp_path, {}, tmp_path / "log.txt",
                          timeout=120, stop_at_line=False)
    assert result["seconds"] is None and result["exit_code"] == 0
    assert "never solved" in (tmp_path / "log.txt").read_text()
