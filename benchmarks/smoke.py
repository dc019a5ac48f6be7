"""What the benchmarks' smoke tests share: the checkout's root, a benchmark run, and when to skip.

Each smoke test runs one benchmark with ``--quick`` in a child process, as a learner would type
it, and checks what it printed and wrote; none asserts a timing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def available(module: str) -> bool:
    """Whether ``module`` can be imported here (False, not an error, when its parent package is missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_dexterity_nb = pytest.mark.skipif(not available("dexterity_nb"),
                                        reason="dexterity_nb is not installed (pip install -e .)")


def run_benchmark(module: str, *arguments: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<module> <arguments>`` from the checkout's root, its output captured as text."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
