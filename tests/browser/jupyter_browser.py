"""Helpers of the browser tests: a JupyterLab server on 127.0.0.1 and a notebook driven by
Playwright. A module of its own (not conftest.py) so that test modules import it by a name no
other test folder uses: `from jupyter_browser import Notebook, write_notebook`.
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

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


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
        # No "get notified about Jupyter news?" toast covering the widgets in screenshots.
        notification_settings = (self.root / ".jupyterlab-settings" / "@jupyterlab"
                                 / "apputils-extension" / "notification.jupyterlab-settings")
        notification_settings.parent.mkdir(parents=True, exist_ok=True)
        notification_settings.write_text('{"fetchNews": "false", "checkForUpdates": false}')
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
