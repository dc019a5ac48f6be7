"""The tutorials are nbgrader source notebooks: a release holds no solution, and autograding grades right.

This is what a teacher does (docs/teaching.md), in a temporary course directory with one assignment
per tutorial (``source/<notebook>/<notebook>.ipynb``):

1. ``nbgrader generate_assignment`` makes the student release;
2. ``nbgrader autograde`` grades two submissions of every assignment: the source notebooks themselves
   (student "solved": every exercise answered, so full points) and the release as handed out
   (student "unsolved": nothing answered, so zero points, and every notebook must still run to the end).

Autograding executes each notebook once per submission, so this costs about two nbval runs of the
series (minutes). Every ``tutorials/NN_*.ipynb`` with nbgrader cells takes part, so new notebooks join
by themselves.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader", reason="nbgrader is in the `test` extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
CELL_TIMEOUT = 600  # seconds for one cell; nbgrader's default (30) is shorter than a drill on a busy 2-core machine
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def _grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_notebooks() -> list[Path]:
    """Every numbered tutorial that has nbgrader cells."""
    return [path for path in sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
            if any(_grading(cell) for cell in nbformat.read(path, as_version=4).cells)]


NOTEBOOKS = graded_notebooks()


def data_folders(notebook: Path) -> list[Path]:
    """The folders next to the tutorials that this notebook reads from (it names them, e.g. "checkpoints/...")."""
    text = notebook.read_text()
    return [folder for folder in sorted(TUTORIALS.iterdir())
            if folder.is_dir() and not folder.name.startswith((".", "_")) and f"{folder.name}/" in text]


def _nbgrader(course: Path, *arguments: str) -> None:
    # The notebooks' kernel spec runs `python`: put this environment's first on the PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    environment = dict(os.environ, PATH=path, PYDEVD_DISABLE_FILE_VALIDATION="1")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *arguments], cwd=course, env=environment,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(arguments)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory after generate_assignment and autograde of both submissions."""
    if not NOTEBOOKS:
        pytest.fail(f"No tutorial in {TUTORIALS} has nbgrader cells.")
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.Execute.timeout = {CELL_TIMEOUT}\n"
    )
    for notebook in NOTEBOOKS:
        (course / "source" / notebook.stem).mkdir(parents=True)
        shutil.copy(notebook, course / "source" / notebook.stem)
        for folder in data_folders(notebook):  # nbgrader copies them into the release and next to each submission
            shutil.copytree(folder, course / "source" / notebook.stem / folder.name)
    _nbgrader(course, "generate_assignment", "*")
    for notebook in NOTEBOOKS:
        for student, folder in (("solved", "source"), ("unsolved", "release")):
            submitted = course / "submitted" / student / notebook.stem
            submitted.mkdir(parents=True)
            shutil.copy(course / folder / notebook.stem / notebook.name, submitted)
    _nbgrader(course, "autograde", "*")
    return course


def _grades(course: Path, student: str) -> dict[str, list[tuple[str, float, float]]]:
    """{assignment: [(test cell, score, max score), ...]} from the gradebook."""
    from nbgrader.api import Gradebook

    grades = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for notebook in NOTEBOOKS:
            submission = gradebook.find_submission(notebook.stem, student)
            grades[notebook.stem] = sorted((grade.name, grade.score, grade.max_score)
                                           for submitted in submission.notebooks for grade in submitted.grades)
    return grades


def _test_cells(path: Path) -> list[str]:
    return sorted(_grading(cell)["grade_id"] for cell in nbformat.read(path, as_version=4).cells
                  if _grading(cell).get("grade"))


def _errors(notebook) -> list[tuple[int, str, str]]:
    """(cell index, grade id or '', error name) of every cell that raised while autograding."""
    return [(index, _grading(cell).get("grade_id", ""), output.ename)
            for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for output in cell.outputs if output.output_type == "error"]


def test_every_exercise_notebook_is_graded():
    exercises = [path.name for path in sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
                 if "from dexterity_nb.exercises import check_" in path.read_text()]
    assert exercises == [path.name for path in NOTEBOOKS], "a tutorial with an exercise has no nbgrader cells"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_release_holds_no_solution_and_no_hidden_test(course, notebook):
    released = sorted(path.relative_to(course / "release" / notebook.stem)
                      for path in (course / "release" / notebook.stem).rglob("*") if path.is_file())
    data = sorted(path.relative_to(TUTORIALS) for folder in data_folders(notebook)
                  for path in folder.rglob("*") if path.is_file())
    assert released == sorted([Path(notebook.name), *data]), (
        f"the release of {notebook.name} should hold the notebook and the data it reads, nothing else: {released}")
    assert not [path for path in released if path.suffix == ".py"], "no Python module (an answer?) in the release"

    text = (course / "release" / notebook.stem / notebook.name).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{marker!r} is still in the release of {notebook.name}"
    release = nbformat.reads(text, as_version=4)
    released_code = {line.strip() for cell in release.cells if cell.cell_type == "code"
                     for line in cell.source.splitlines()}
    source = nbformat.read(notebook, as_version=4)
    solution_lines = {line.strip() for cell in source.cells if _grading(cell).get("solution")
                      for region in SOLUTION.findall(cell.source) for line in region.splitlines()
                      if len(line.strip()) > 8 and not line.strip().startswith("#")}  # not `else:` and the like
    assert solution_lines, f"{notebook.name} has no solution region"
    leaked = sorted(solution_lines & released_code)
    assert not leaked, f"lines of the reference solution are in the release of {notebook.name}: {leaked}"

    answers = [cell.source for cell in release.cells if _grading(cell).get("solution")]
    assert answers and all("raise NotImplementedError()" in answer for answer in answers)
    for cell in release.cells:
        if _grading(cell).get("grade"):
            assert not re.search(r"^\s*assert\b", cell.source, re.M), (
                f"test cell {_grading(cell)['grade_id']} of the release asserts: 'Run All' would stop there")


def test_the_solved_notebooks_get_full_points_and_run_without_error(course):
    grades = _grades(course, "solved")
    for notebook in NOTEBOOKS:
        assert [name for name, _, _ in grades[notebook.stem]] == _test_cells(notebook)
        short = [(name, score, maximum) for name, score, maximum in grades[notebook.stem] if not maximum or score != maximum]
        assert not short, f"{notebook.name}: the reference answers lose points: {short}"
        autograded = nbformat.read(course / "autograded" / "solved" / notebook.stem / notebook.name, as_version=4)
        assert not _errors(autograded), f"{notebook.name} raised while autograding the source: {_errors(autograded)}"


def test_the_unsolved_release_gets_zero_points_and_still_runs_to_the_end(course):
    grades = _grades(course, "unsolved")
    for notebook in NOTEBOOKS:
        assert [name for name, _, _ in grades[notebook.stem]] == _test_cells(notebook)
        scored = [(name, score) for name, score, _ in grades[notebook.stem] if score != 0]
        assert not scored, f"{notebook.name}: the unsolved release scores points: {scored}"
        autograded = nbformat.read(course / "autograded" / "unsolved" / notebook.stem / notebook.name, as_version=4)
        # Only the hidden tests may fail (AssertionError in a test cell); every other cell must run.
        broken = [error for error in _errors(autograded) if not (error[1].endswith("_tests") and error[2] == "AssertionError")]
        assert not broken, f"{notebook.name} does not run to the end unsolved: {broken} (cell, grade id, error)"
        last = [cell for cell in autograded.cells if cell.cell_type == "code"][-1]
        assert last.execution_count is not None, f"the last cell of {notebook.name} did not run"


def test_nbgrader_export_reports_the_totals(course):
    """`nbgrader export`, the teacher's last command, reports full and zero scores out of each assignment's points."""
    possible = {notebook.stem: sum(_grading(cell)["points"] for cell in nbformat.read(notebook, as_version=4).cells
                                   if _grading(cell).get("grade")) for notebook in NOTEBOOKS}
    _nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as table:
        rows = {(row["assignment"], row["student_id"]): (float(row["score"]), float(row["max_score"]))
                for row in csv.DictReader(table)}
    for assignment, points in possible.items():
        assert points > 0
        assert rows[assignment, "solved"] == (points, points)
        assert rows[assignment, "unsolved"] == (0, points)
