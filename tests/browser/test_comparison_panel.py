"""A learner compares two gatherers in one panel in JupyterLab, stops it, and reads `.results`.

Proves in Chromium that the Comparison panel's plot and summary table update while its cell
runs, that its Stop button ends the comparison early (the click reaches the running cell, as
with LiveDashboard), and that the finished runs are there for the next cell.
"""

from __future__ import annotations

import re
import time

from jupyter_browser import Notebook, write_notebook

SETUP_CELL = """\
import numpy as np
from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.widgets import Comparison


class EpsilonGreedyGatherer(Gatherer):
    \"\"\"The policy's most likely action, but a random one with probability epsilon.\"\"\"

    epsilon = 0.1

    def select_action(self, predicted_parameters):
        logits = predicted_parameters[0]
        if self.rng.random() < self.epsilon:
            action = self.rng.integers(logits.shape[-1], size=1)
        else:
            action = np.argmax(logits, axis=-1)
        log_probability = self.distribution.log_probability(action, *predicted_parameters)
        return action[0], log_probability[0]


print("READY")"""
# 2 variants × 2 seeds × 200 cycles: each run takes seconds, so the three runs left after the
# first one finishes leave the click ample time to land (with 4 cycles a run took ~0.1 s once
# agents built in a blink, and the comparison ended before the click reached it).
CYCLES_PER_RUN = 200
ASKED_CYCLES = 2 * 2 * CYCLES_PER_RUN
COMPARISON_CELL = f"""\
comparison = Comparison({{"PPO": Gatherer, "ε-greedy 10%": EpsilonGreedyGatherer}},
                        env="CartPole-v1", seeds=2, cycles={CYCLES_PER_RUN}, epochs=2, batch_size=64,
                        hyperparameters={{"horizon": 128, "workers": 2}})
cycles_done = sum(len(history) for results in comparison.results.values()
                  for history in results.histories)
print("COMPARISON ENDED", comparison.outcome, cycles_done)"""
RESULTS_CELL = """\
ppo = comparison.results["PPO"]
print("RESULTS", len(ppo.histories), len(ppo.agents), ppo.seeds, [row["variant"] for row in comparison.summary()])"""

PANEL = ".jp-NotebookPanel:visible .dexterity-comparison"


def plot_source(page) -> str:
    return page.locator(f"{PANEL} img").get_attribute("src") or ""


def table_text(page) -> str:
    table = page.locator(f"{PANEL} table")
    return table.inner_text() if table.count() else ""


def runs_of(page, variant: str) -> int:
    """The "runs" column of a variant's row in the panel's summary table (0 if not shown)."""
    for line in table_text(page).splitlines():
        cells = [cell.strip() for cell in line.split("\t")]
        match = re.match(r"\d+", cells[1]) if len(cells) > 1 else None
        if cells[0] == variant and match:
            return int(match.group())
    return 0


def wait_until(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(message)


def test_comparison_panel_updates_live_stops_early_and_keeps_results(jupyter_lab, page, tmp_path):
    write_notebook(jupyter_lab.root / "compare.ipynb", [SETUP_CELL, COMPARISON_CELL, RESULTS_CELL])
    notebook = Notebook(page, jupyter_lab, "compare.ipynb")
    notebook.run(0)
    notebook.wait_for_output(0, "READY", timeout=90)
    notebook.run(1)
    notebook.run(2)  # queued behind the comparison, as with "Run All"

    page.wait_for_selector(f"{PANEL} button:has-text('Stop')", timeout=90_000)
    page.wait_for_selector(f"{PANEL} img[src^='blob:'], {PANEL} img[src^='data:']",
                           timeout=60_000)
    first_plot = plot_source(page)
    assert "PPO" in table_text(page) and "ε-greedy 10%" in table_text(page)
    assert runs_of(page, "PPO") == 0

    # The first run (PPO, seed 0) finishes: its row counts it and the curve has been drawn.
    wait_until(lambda: runs_of(page, "PPO") >= 1, 120, "the table never counted PPO's first run")
    assert plot_source(page) != first_plot, "the plot was not redrawn while the cell ran"
    assert "COMPARISON ENDED" not in notebook.output(1), "the comparison cell must still run"
    assert notebook.output(2) == "", "the next cell must wait for the comparison"
    page.locator(PANEL).screenshot(path=str(tmp_path / "comparison-running.png"))

    page.locator(f"{PANEL} button:has-text('Stop')").click()
    output = notebook.wait_for_output(1, "COMPARISON ENDED", timeout=90)
    outcome, cycles_done = re.search(r"COMPARISON ENDED (\w+) (\d+)", output).groups()
    assert outcome == "stopped"
    assert CYCLES_PER_RUN <= int(cycles_done) < ASKED_CYCLES, \
        f"{cycles_done} of {ASKED_CYCLES} cycles ran"
    assert "Stopped by the Stop button" in page.locator(PANEL).inner_text()
    assert "stopped early" in table_text(page), "the run cut short must be marked in the table"
    page.locator(PANEL).screenshot(path=str(tmp_path / "comparison-stopped.png"))

    results = notebook.wait_for_output(2, "RESULTS", timeout=60)
    histories, agents, seeds, variants = re.search(
        r"RESULTS (\d+) (\d+) (\[[^\]]*\]) (\[.*\])", results).groups()
    assert int(histories) >= 1 and histories == agents and seeds.startswith("[0")
    assert variants == "['PPO', 'ε-greedy 10%']"
    print("screenshots in", tmp_path)
