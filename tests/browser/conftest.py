"""JupyterLab + Debian chromium, driven by Playwright: the real place where a click must work.

The server runs from this venv on 127.0.0.1 with a random port, a random token and a temporary
root folder; the tests write their notebooks there. Tests skip only on a developer machine
without /usr/bin/chromium; on CI (env CI set) a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("DEXTERITY_CHROMIUM", "/usr/bin/chromium"))
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(
            f"Browser tests need {CHROMIUM} and CI is set: install it with "
            "`apt-get install -y chromium` before running the tests.")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> None:
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                   "execution_count": None} for source in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


class JupyterLab:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self):
        environment = dict(os.environ)
        # The kernel imports the package from this checkout even without `pip install -e`.
        environment["PYTHONPATH"] = os.pathsep.join(
            part for part in (environment.get("PYTHONPATH"), str(REPOSITORY_ROOT)) if part)
        environment["JUPYTER_CONFIG_DIR"] = str(self.root / ".jupyter-config")
        environment["JUPYTER_RUNTIME_DIR"] = str(self.root / ".jupyter-runtime")
        environment["JUPYTERLAB_SETTINGS_DIR"] = str(self.root / ".jupyterlab-settings")
        environment["JUPYTERLAB_WORKSPACES_DIR"] = str(self.root / ".jupyterlab-workspaces")
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.log = open(self.root / "jupyterlab.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={self.token}", "--allow-root",
             f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=",
             "--ServerApp.open_browser=False"],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment, cwd=self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited; see {self.root / 'jupyterlab.log'}")
            try:
                urllib.request.urlopen(f"{self.base_url}/api/status?token={self.token}", timeout=1)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("JupyterLab did not answer within 60 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def notebook_url(self, name: str) -> str:
        # A fresh workspace per notebook, so JupyterLab does not reopen earlier tests' tabs.
        workspace = name.replace(".", "-")
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{name}?token={self.token}"


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    lab = JupyterLab(tmp_path_factory.mktemp("lab-root")).start()
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGUMENTS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    yield page
    context.close()


class Notebook:
    """A notebook opened in JupyterLab, with the few actions the tests need."""

    def __init__(self, page, lab: JupyterLab, name: str):
        self.page = page
        page.goto(lab.notebook_url(name))
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        # The kernel is ready when the status bar says "Idle"; before that, a run is dropped.
        page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)

    def cell(self, index: int):
        # JupyterLab reopens earlier tests' notebooks as hidden tabs: use the visible one.
        return self.page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index)

    def run(self, index: int):
        """Shift+Enter in a cell; retried if the keypress was lost (the prompt stays "[ ]:")."""
        for _ in range(3):
            self.cell(index).locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Shift+Enter")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if self.prompt(index).strip() not in ("[ ]:", ""):
                    return
                time.sleep(0.1)
        raise AssertionError(f"cell {index} did not start running")

    def output(self, index: int) -> str:
        outputs = self.cell(index).locator(".jp-OutputArea")
        return outputs.inner_text() if outputs.count() else ""

    def prompt(self, index: int) -> str:
        return self.cell(index).locator(".jp-InputPrompt").inner_text()

    def wait_for_output(self, index: int, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output(index)
            if text in output:
                return output
            time.sleep(0.2)
        raise AssertionError(f"cell {index} never showed {text!r}; it shows:\n{self.output(index)}")

    def interrupt_kernel(self):
        self.page.locator(".jp-NotebookPanel:visible "
                          "[data-command='notebook:interrupt-kernel']").first.click()
