"""A real learner's session: drill CartPole with LiveDashboard in JupyterLab, then stop it.

Proves in Chromium what headless tests cannot: that the running cell receives the Stop click
(the cell keeps blocking, so "Run All" order holds), that the dashboard updates while the cell
runs, and that the kernel-interrupt button ends a drill with one line and no traceback.
"""

from __future__ import annotations

import re
import time

from jupyter_browser import Notebook, write_notebook

SETUP_CELL = """\
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.widgets import LiveDashboard
agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", seed=0),
                 horizon=1024, workers=2, seed=0, verbose=False)
print("READY")"""
# Far more cycles than the test waits for: only the Stop button or ■ can end this drill in time.
DRILL_CELL = """\
dashboard = LiveDashboard()
history = agent.drill(300, 3, 64, callbacks=[dashboard])
print("DRILL ENDED", agent.cycle, agent.drill_outcome, dashboard.stop_clicked_at_cycle)"""
CONTINUE_CELL = """\
cycle_before = agent.cycle
agent.drill(2, 2, 64, verbose=False)
print("CONTINUED", cycle_before, agent.cycle)"""

DASHBOARD = ".jp-NotebookPanel:visible .dexterity-dashboard"


def progress_done(page) -> int:
    """Cycles done in this drill, read from the progress bar's "done/total" label."""
    text = page.locator(f"{DASHBOARD} .dexterity-cycle-count").inner_text()
    return int(text.split("/")[0])


def plot_source(page) -> str:
    return page.locator(f"{DASHBOARD} img").get_attribute("src") or ""


def start_drill_and_watch(notebook, page):
    """Run setup and drill cells; check the dashboard moves while the drill cell runs."""
    notebook.run(0)
    notebook.wait_for_output(0, "READY", timeout=90)
    notebook.run(1)
    notebook.run(2)  # queued behind the drill, as with "Run All"
    page.wait_for_selector(f"{DASHBOARD} button:has-text('Stop')", timeout=90_000)
    deadline = time.monotonic() + 90
    while progress_done(page) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    first_progress, first_plot = progress_done(page), plot_source(page)
    # Redraws are throttled (at most one per 0.5 s), so wait for the plot as well as the count.
    deadline = time.monotonic() + 60
    while (progress_done(page) < first_progress + 2 or plot_source(page) == first_plot) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert progress_done(page) >= first_progress + 2, "progress did not move while the cell ran"
    assert plot_source(page) != first_plot, "the plot was not redrawn while the cell ran"
    assert "DRILL ENDED" not in notebook.output(1), "the drill cell must still be running"
    assert notebook.output(2) == "", "the next cell must wait for the drill (Run All order)"


def test_stop_button_ends_a_blocking_drill_and_the_next_drill_continues(
        jupyter_lab, page, tmp_path):
    write_notebook(jupyter_lab.root / "stop.ipynb", [SETUP_CELL, DRILL_CELL, CONTINUE_CELL])
    notebook = Notebook(page, jupyter_lab, "stop.ipynb")
    start_drill_and_watch(notebook, page)

    done_at_click = progress_done(page)
    page.locator(f"{DASHBOARD} button:has-text('Stop')").click()
    output = notebook.wait_for_output(1, "DRILL ENDED", timeout=60)
    cycle, outcome, handled_at = re.search(r"DRILL ENDED (\d+) (\w+) (\d+)", output).groups()
    assert outcome == "stopped"
    assert handled_at == cycle, "the drill must end at the boundary where the click was handled"
    assert int(cycle) <= done_at_click + 2, f"clicked at cycle {done_at_click}, ended at {cycle}"
    assert "Stopped" in page.locator(DASHBOARD).inner_text()
    page.locator(DASHBOARD).screenshot(path=str(tmp_path / "dashboard-stopped.png"))
    page.screenshot(path=str(tmp_path / "notebook-stopped.png"))

    continued = notebook.wait_for_output(2, "CONTINUED", timeout=60)
    before, after = map(int, re.search(r"CONTINUED (\d+) (\d+)", continued).groups())
    assert before == int(cycle) and after == int(cycle) + 2
    print("screenshots in", tmp_path)


def test_kernel_interrupt_ends_the_drill_with_one_line_and_no_traceback(
        jupyter_lab, page, tmp_path):
    write_notebook(jupyter_lab.root / "interrupt.ipynb", [SETUP_CELL, DRILL_CELL, CONTINUE_CELL])
    notebook = Notebook(page, jupyter_lab, "interrupt.ipynb")
    start_drill_and_watch(notebook, page)

    notebook.interrupt_kernel()
    output = notebook.wait_for_output(1, "DRILL ENDED", timeout=60)
    cycle, outcome = re.search(r"DRILL ENDED (\d+) (\w+)", output).groups()
    assert outcome == "interrupted"
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "Interrupted" in page.locator(DASHBOARD).inner_text()
    page.screenshot(path=str(tmp_path / "notebook-interrupted.png"))
    # An interrupt after a finished cycle must not abort the queued cell (no error → no abort).
    continued = notebook.wait_for_output(2, "CONTINUED", timeout=60)
    before, after = map(int, re.search(r"CONTINUED (\d+) (\d+)", continued).groups())
    assert before == int(cycle) and after == int(cycle) + 2
