"""Checks on the committed notebooks themselves (collected with `pytest --nbval-lax tutorials/`)."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(Path(__file__).parent.glob("[0-9][0-9]_*.ipynb"))
SCREEN_LINES = 40


def test_the_tutorials_are_numbered_from_00_without_gaps():
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{number:02d}" for number in range(len(NOTEBOOKS))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_clean_and_short(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    with_outputs = [index for index, cell in enumerate(notebook.cells)
                    if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not with_outputs, (f"cells {with_outputs} have outputs: clear them with "
                              f"`jupyter nbconvert --clear-output --inplace {path.name}`")
    long_cells = [index for index, cell in enumerate(notebook.cells) if cell.source.count("\n") + 1 > SCREEN_LINES]
    assert not long_cells, f"cells {long_cells} are longer than {SCREEN_LINES} lines: split them"
    source = "\n".join(cell.source for cell in code)
    assert "from dexterity_nb.exercises import check_" in source, "every tutorial has at least one checked exercise"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# "), "start with a title"


def _grading(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_exercises_follow_the_graded_notebook_convention(path):
    """Each checker call is an nbgrader test cell with points, right after its answer cell (docs/teaching.md)."""
    cells = nbformat.read(path, as_version=4).cells
    sources = "\n".join(cell.source for cell in cells)
    assert not re.search(r"\bsolution[s][./]", sources), "no solution module lives next to the notebooks any more"
    grade_ids = [_grading(cell)["grade_id"] for cell in cells if _grading(cell)]
    assert len(grade_ids) == len(set(grade_ids)), f"grade ids repeat: {grade_ids}"
    tests = [index for index, cell in enumerate(cells) if "from dexterity_nb.exercises import check_" in cell.source]
    assert tests, "every tutorial has at least one checked exercise"
    for index in tests:
        test, answer = cells[index], cells[index - 1]
        grading, name = _grading(test), _grading(test).get("grade_id", f"cell {index}")
        assert grading.get("grade") and grading.get("locked") and not grading.get("solution"), f"{name}: not a locked test cell"
        assert isinstance(grading.get("points"), int) and grading["points"] >= 1, f"{name}: give it points (an int >= 1)"
        assert name.endswith("_tests") and grading.get("schema_version") == 3
        parts = re.fullmatch(r"(.*)### BEGIN HIDDEN TESTS\n(.*)### END HIDDEN TESTS\n?", test.source, re.S)
        assert parts, f"{name}: end the test cell with a ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS region"
        visible, hidden = parts.groups()
        assert re.search(r"^\w+_passes = check_\w+\(", visible, re.M), f"{name}: store the checker's verdict in <name>_passes"
        assert not re.search(r"^\s*assert\b", visible, re.M), f"{name}: an assert outside the hidden tests stops 'Run All'"
        assert len(re.findall(r"^\s*assert\b", hidden, re.M)) >= 2, f"{name}: the hidden tests should assert the verdict and more"

        answer_grading = _grading(answer)
        assert answer_grading.get("solution") and not answer_grading.get("grade") and not answer_grading.get("locked"), (
            f"the cell before {name} must be its answer cell (nbgrader solution: true)")
        assert answer_grading.get("grade_id") == name.removesuffix("_tests") + "_answer"
        regions = re.findall(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION", answer.source, re.S | re.M)
        assert regions, f"{name}: the answer cell has no ### BEGIN/END SOLUTION region"
        # The release replaces each region by `raise NotImplementedError()`: inside a function body it only
        # raises when called (the checker reports it), so the cell itself still runs.
        assert all(regions), f"{name}: put each solution region inside a function or method body"
        starting_text = re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", answer.source, flags=re.S)
        assert re.search(r"\b(def|class) ", starting_text) and '"""' in starting_text, (
            f"{name}: outside the solution the learner still needs the signature and a docstring saying what to write")
