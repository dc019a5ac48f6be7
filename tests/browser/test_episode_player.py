"""A learner watches the trained agent play: `show_episode(agent, env)` in JupyterLab.

Proves in Chromium that the player (Play button, frame slider, frame image) renders, and that
pressing Play and moving the slider change the picture.
"""

from __future__ import annotations

import re
import time

from jupyter_browser import Notebook, write_notebook

SETUP_CELL = """\
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.widgets import show_episode
agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", seed=0),
                 horizon=128, workers=2, seed=0, verbose=False)
agent.drill(2, 2, 64)
print("READY")"""
# As a learner writes it: the call is the cell's last line, so its result is displayed too.
EPISODE_CELL = """\
show_episode(agent, "CartPole-v1", seed=0)"""

PLAYER = ".jp-NotebookPanel:visible .dexterity-episode"


def image_source(page) -> str:
    return page.locator(f"{PLAYER} img").get_attribute("src") or ""


def wait_for_new_image(page, old: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        source = image_source(page)
        if source and source != old:
            return source
        time.sleep(0.1)
    raise AssertionError("the episode image did not change")


def test_show_episode_plays_the_trained_agent(jupyter_lab, page, tmp_path):
    write_notebook(jupyter_lab.root / "episode.ipynb", [SETUP_CELL, EPISODE_CELL])
    notebook = Notebook(page, jupyter_lab, "episode.ipynb")
    notebook.run(0)
    notebook.wait_for_output(0, "READY", timeout=120)
    notebook.run(1)
    page.wait_for_selector(f"{PLAYER} img[src]", timeout=90_000)
    deadline = time.monotonic() + 60  # the cell's result would come last: wait for the cell end
    while not re.fullmatch(r"\[\d+\]:", notebook.prompt(1).strip()):
        assert time.monotonic() < deadline, f"the cell did not finish: {notebook.prompt(1)}"
        time.sleep(0.2)
    assert page.locator(PLAYER).count() == 1, "the player must be shown once, not twice"
    slider = page.locator(f"{PLAYER} .widget-slider")
    assert slider.count() == 1 and page.locator(f"{PLAYER} .widget-play").count() == 1
    caption = page.locator(PLAYER).inner_text()
    steps = int(re.search(r"return \d+\.\d · (\d+) steps", caption).group(1))
    assert steps >= 3, "an episode of CartPole lasts at least a few steps"
    first_frame = image_source(page)
    box = page.locator(f"{PLAYER} img").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50, f"frame image is tiny: {box}"
    page.locator(PLAYER).screenshot(path=str(tmp_path / "episode-first-frame.png"))

    # Play: the browser advances the slider, the kernel answers with each frame's picture.
    page.locator(f"{PLAYER} .widget-play button").first.click()
    wait_for_new_image(page, first_frame)
    page.locator(PLAYER).screenshot(path=str(tmp_path / "episode-playing.png"))

    # The slider alone shows a chosen frame too: pause, then click near the track's far end.
    page.locator(f"{PLAYER} .widget-play button").nth(1).click()  # pause
    time.sleep(0.5)
    shown = image_source(page)
    track = page.locator(f"{PLAYER} .widget-slider .noUi-target").bounding_box()
    page.mouse.click(track["x"] + 0.9 * track["width"], track["y"] + track["height"] / 2)
    wait_for_new_image(page, shown)
    page.locator(PLAYER).screenshot(path=str(tmp_path / "episode-slider.png"))
    print("screenshots in", tmp_path)
