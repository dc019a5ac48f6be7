"""Checks on the committed notebooks themselves (collected with `pytest --nbval-lax tutorials/`)."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(Path(__file__).parent.glob("[0-9][0-9]_*.ipynb"))
SCREEN_LINES = 40


def test_there_are_eight_numbered_tutorials():
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{number:02d}" for number in range(1, 9)]


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
