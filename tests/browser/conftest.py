"""JupyterLab + Debian chromium, driven by Playwright: the real place where a click must work.

The server runs from this venv on 127.0.0.1 with a random port, a random token and a temporary
root folder; the tests write their notebooks there (helpers in jupyter_browser.py). Tests skip
only on a developer machine without /usr/bin/chromium; on CI (env CI set) a missing browser is
a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jupyter_browser import JupyterLab

CHROMIUM = Path(os.environ.get("DEXTERITY_CHROMIUM", "/usr/bin/chromium"))
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
