"""`show_episode`: watch the trained agent play one episode inline (headless, no ffmpeg).

The episode is rendered to `rgb_array` frames, each shrunk and stored as PNG bytes (a few kB),
and shown with an ipywidgets `Play` + slider + `Image`. Memory stays bounded for long
episodes: at most `max_frames` frames are kept; when the episode outgrows that, every other
kept frame is dropped and only every 2nd (then 4th, ...) step is recorded from then on.
"""

from __future__ import annotations

import io
import math
import os
import sys

import numpy as np

from dexterity_nb.widgets.kernel_messages import in_notebook

__all__ = ["show_episode", "EpisodePlayer", "record_episode"]


def _png(frame: np.ndarray, width: int) -> bytes:
    from PIL import Image

    step = max(1, math.ceil(frame.shape[1] / width))
    small = np.ascontiguousarray(frame[::step, ::step, :3])  # integer stride: fast, no blur
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, format="PNG")
    return buffer.getvalue()


def _prefer_offscreen_video():
    """On Linux with no display, name SDL's "offscreen" video driver before pygame renders.

    gymnasium's `rgb_array` rendering initialises pygame's display. With neither DISPLAY nor
    WAYLAND_DISPLAY set, SDL probes X11, then Wayland (whose library prints "error:
    XDG_RUNTIME_DIR is invalid or not set in the environment." to stderr), and settles on
    "offscreen" anyway: naming it skips the failing probes, and the frames are the same. A
    display, or the user's own SDL_VIDEODRIVER, leaves SDL's choice alone.
    """
    if sys.platform.startswith("linux") and not any(
            os.environ.get(name) for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")):
        os.environ["SDL_VIDEODRIVER"] = "offscreen"


def _render_env(agent, env):
    """An env that renders rgb_array frames: `env` itself, a fresh one of that id, or the
    agent's task. The agent's `act` takes raw observations, so no transformers are applied; but
    an agent trained without velocities (make_env(..., mask_velocity=True)) gets them masked."""
    import gymnasium

    from dexterity_nb.common.wrappers import MaskVelocity, masks_velocity

    if env is not None and not isinstance(env, str):
        if getattr(env, "render_mode", None) != "rgb_array":
            raise ValueError("show_episode needs an env made with render_mode='rgb_array', got "
                             f"render_mode={getattr(env, 'render_mode', None)!r}; e.g. "
                             "gymnasium.make('CartPole-v1', render_mode='rgb_array').")
        return env
    env_id = env
    if env_id is None:
        spec = getattr(getattr(agent, "env", None), "spec", None)
        env_id = getattr(spec, "id", None)
        if env_id is None:
            raise ValueError("Cannot tell which environment the agent plays: pass env, e.g. "
                             "show_episode(agent, 'CartPole-v1').")
    rendering = gymnasium.make(env_id, render_mode="rgb_array")
    return MaskVelocity(rendering) if masks_velocity(getattr(agent, "env", None)) else rendering


def record_episode(agent, env=None, max_frames: int = 300, width: int = 360,
                   deterministic: bool = True, seed: int | None = None,
                   max_steps: int = 10_000) -> dict:
    """Play one episode; return {frames: [png bytes], stride, length, total_return, ...}.

    `stride` is how many env steps lie between two kept frames (1 unless the episode was longer
    than `max_frames`).
    """
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    _prefer_offscreen_video()
    env = _render_env(agent, env)
    observation, _ = env.reset(seed=seed)
    if hasattr(agent, "reset_memory"):  # a recurrent agent starts the episode remembering nothing
        agent.reset_memory()
    frames, stride, total_return, length = [_png(env.render(), width)], 1, 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated) and length < max_steps:
        action = agent.act(observation, deterministic=deterministic)
        observation, reward, terminated, truncated, _ = env.step(action)
        total_return += float(reward)
        length += 1
        if length % stride == 0:
            frames.append(_png(env.render(), width))
            if len(frames) > max_frames:
                frames = frames[::2]
                stride *= 2
    return {"frames": frames, "stride": stride, "length": length, "total_return": total_return,
            "terminated": bool(terminated), "truncated": bool(truncated)}


def _cell_number():
    """The number of the notebook cell running now (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    return getattr(get_ipython(), "execution_count", None)


class EpisodePlayer:
    """One recorded episode and its player widget (built on first display).

    Attributes: `frames` (PNG bytes), `stride` (env steps between two frames), `length`
    (steps), `total_return`, `terminated`, `truncated` (how the episode ended).
    """

    def __init__(self, recording: dict, fps: int = 30, width: int = 360):
        self.__dict__.update(recording)
        self.fps = fps
        self.width = width
        self.widget = None
        self.shown_in_cell = None  # show_episode displays the player in this cell

    def build(self):
        import ipywidgets as widgets

        last = len(self.frames) - 1
        # A fixed CSS width: in a VBox an image is otherwise stretched to the whole output width.
        self.image = widgets.Image(value=self.frames[0], format="png",
                                   layout=widgets.Layout(width=f"{self.width}px",
                                                         border="1px solid #ddd"))
        self.play = widgets.Play(value=0, min=0, max=last, step=1,
                                 interval=max(1, int(1000 * self.stride / self.fps)))
        self.slider = widgets.IntSlider(value=0, min=0, max=last, description="frame")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._show_frame, names="value")
        self.label = widgets.Label(self._caption())
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider]), self.image,
                                    self.label])
        self.widget.add_class("dexterity-episode")
        return self.widget

    def _show_frame(self, change):
        self.image.value = self.frames[change["new"]]

    def _caption(self):
        ending = "terminated" if self.terminated else "truncated" if self.truncated else "cut off"
        every = f", 1 frame per {self.stride} steps" if self.stride > 1 else ""
        return f"return {self.total_return:.1f} · {self.length} steps ({ending}){every}"

    def _ipython_display_(self):
        from IPython.display import display

        # `show_episode(agent)` as a cell's last line has already shown the player: the cell's
        # result would be a second copy of it. In a later cell, `player` shows it again.
        if self.shown_in_cell is not None and self.shown_in_cell == _cell_number():
            return
        display(self.widget if self.widget is not None else self.build())

    def __repr__(self):
        return f"EpisodePlayer({self._caption()}, {len(self.frames)} frames)"


def show_episode(agent, env=None, max_frames: int = 300, width: int = 360, fps: int = 30,
                 deterministic: bool = True, seed: int | None = None) -> EpisodePlayer:
    """Play one episode of `agent` and show it inline; returns the `EpisodePlayer`.

    env: None (the agent's task), a gymnasium id, or an env with render_mode="rgb_array".
    max_frames bounds memory (long episodes are subsampled). width is the player's width in
    pixels (frames are stored at most that wide, shrunk by a whole-number step).
    Outside a notebook it prints the episode's return and length instead.
    """
    player = EpisodePlayer(record_episode(agent, env, max_frames=max_frames, width=width,
                                          deterministic=deterministic, seed=seed),
                           fps=fps, width=width)
    if in_notebook():
        from IPython.display import display

        display(player)
        player.shown_in_cell = _cell_number()
    else:
        print(player)
    return player
