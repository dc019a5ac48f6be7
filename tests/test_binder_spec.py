"""The Binder spec (binder/) really runs the tutorials.

``test_binder_spec_runs_the_tutorials`` does what repo2docker does, in a fresh virtual environment:
install exactly ``binder/requirements*.txt``, run ``binder/postBuild`` from the repository root,
then run every tutorial with nbval in that environment. A missing dependency, a broken install
line or a notebook that needs something only the developer's venv has fails here instead of on
mybinder.org. It takes several minutes (installing TensorFlow, then all notebooks); select or skip
it with ``-m binder`` / ``-m "not binder"``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _requirement_names(lines) -> dict[str, str]:
    """{normalised project name: full requirement line} of requirement lines (comments, options skipped)."""
    names = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0)
        names[re.sub(r"[-_.]+", "-", name).lower()] = line
    return names


def _extras(line: str) -> set[str]:
    """The extras of a requirement line: ``gymnasium[classic-control,box2d]>=1.0`` → {classic-control, box2d}."""
    found = re.match(r"[A-Za-z0-9_.\-]+\s*\[([^\]]*)\]", line)
    return {extra.strip() for extra in found.group(1).split(",")} if found else set()


def _bounds(line: str) -> str:
    """A requirement line without its name and extras, spaces removed: ``>=8.1,<9``."""
    return re.sub(r"\s+", "", re.sub(r"^[A-Za-z0-9_.\-]+\s*(\[[^\]]*\])?", "", line))


def test_binder_requirements_cover_the_package_dependencies():
    """Every runtime dependency of pyproject.toml is in binder/requirements.txt (tensorflow as tensorflow-cpu)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = _requirement_names(project["dependencies"])
    binder = _requirement_names((BINDER / "requirements.txt").read_text().splitlines())
    if "tensorflow" in needed:
        needed["tensorflow-cpu"] = needed.pop("tensorflow").replace("tensorflow", "tensorflow-cpu", 1)
    missing = sorted(set(needed) - set(binder))
    assert not missing, (
        f"binder/requirements.txt lacks {missing}, which pyproject.toml depends on; add them "
        "(binder/postBuild installs the package with --no-deps)."
    )
    # The same version bounds; Binder may ask for more extras (gymnasium's box2d, for the LunarLander tutorials).
    different = {name: (needed[name], binder[name]) for name in needed
                 if _bounds(needed[name]) != _bounds(binder[name]) or not _extras(needed[name]) <= _extras(binder[name])}
    assert not different, f"Version bounds or extras differ between pyproject.toml and binder/requirements.txt: {different}"
    box2d = _extras(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["box2d"][0])
    assert box2d <= _extras(binder["gymnasium"]), "binder/requirements.txt should install gymnasium's box2d extra (LunarLander)."
    assert "tensorflow" not in binder, "binder/requirements.txt should use tensorflow-cpu only, not tensorflow too."
    assert (BINDER / "runtime.txt").read_text().strip().startswith("python-3.")
    assert os.access(BINDER / "postBuild", os.X_OK), "binder/postBuild must be executable (chmod +x)."


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.mark.binder
def test_binder_spec_runs_the_tutorials(tmp_path):
    runtime = (BINDER / "runtime.txt").read_text().strip()
    wanted = tuple(int(part) for part in runtime.removeprefix("python-").split(".")[:2])
    if sys.version_info[:2] != wanted:
        pytest.skip(f"binder/runtime.txt asks for Python {runtime}; this is {sys.version_info[:2]}")

    environment = tmp_path / "binder-venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    env = dict(os.environ, PATH=f"{environment / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               VIRTUAL_ENV=str(environment), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)

    # What repo2docker does: requirements*.txt, then postBuild, both from the repository root.
    for requirements in sorted(BINDER.glob("requirements*.txt")):
        _run([python, "-m", "pip", "install", "--no-cache-dir", "-r", requirements], cwd=ROOT, env=env)
    if (BINDER / "postBuild").exists():
        _run(["bash", BINDER / "postBuild"], cwd=ROOT, env=env)

    # The package must come from the install, not from this checkout.
    located = _run([python, "-c", "import dexterity_nb, tensorflow; print(dexterity_nb.__file__)"],
                   cwd=tmp_path, env=env).stdout.strip()
    assert str(environment) in located, f"dexterity_nb was imported from {located}, not from the Binder venv"

    # Only the test runner is added; the notebooks must run on the spec alone.
    _run([python, "-m", "pip", "install", "--no-cache-dir", "pytest", "nbval"], cwd=ROOT, env=env)
    result = subprocess.run(
        [python, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q", "."],
        cwd=ROOT / "tutorials", env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"The tutorials fail in the Binder environment:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
