"""A learner's first screen is not red: no start-up noise on stderr, while real warnings still show.

TensorFlow's C++ start-up lines are dropped by ``dexterity_nb.common.quiet_import``; SDL's
"XDG_RUNTIME_DIR" line by ``widgets.episode._prefer_offscreen_video``.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dexterity_nb.common.quiet_import import drop_start_up_lines
from dexterity_nb.widgets import episode

REPOSITORY = Path(__file__).resolve().parents[1]

# What TensorFlow 2.21 writes to fd 2 on a machine without a GPU: at import, then at the first device query.
START_UP = b"""\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795630445.554896    5738 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795630445.555215    5738 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1795630445.619793    5738 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1795630447.118596    5738 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def learner_environment():
    """This process's environment as a learner's machine has it: no log-level variable, no
    display, no SDL driver, no XDG_RUNTIME_DIR; and this venv's Python first on PATH."""
    environment = dict(os.environ)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"):
        environment.pop(name, None)
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    return environment


# ---------------------------------------------------------------- the filter, on a fake stream
def test_only_the_known_start_up_lines_are_dropped():
    real = (b"I0000 00:00:1795630445.7    5738 some_kernel.cc:12] an INFO line nobody listed\n"
            b"E0000 00:00:1795630445.8    5738 op_kernel.cc:99] a real C++ error\n"
            b"/work/notebook.py:3: UserWarning: a warning written while TensorFlow loads\n"
            b"To enable the following instructions: (not after the CPU note, so kept)\n")
    start_up = START_UP.splitlines(keepends=True)
    assert drop_start_up_lines(START_UP) == b""
    assert drop_start_up_lines(b"".join(start_up[:2]) + real + b"".join(start_up[2:])) == real  # as they came


def test_cuinit_failure_is_kept_unless_tensorflow_said_there_is_no_driver():
    cuinit = START_UP.splitlines(keepends=True)[-1]
    assert drop_start_up_lines(cuinit) == cuinit  # with a driver installed it is a real error
    assert drop_start_up_lines(START_UP.replace(b"cudart_stub.cc", b"other.cc")).endswith(cuinit)


def test_the_quiet_import_restores_fd_2_and_re_emits_what_is_not_start_up_noise(tmp_path):
    """With a stand-in ``tensorflow`` that writes the start-up lines, a C++-style error and a
    Python warning to fd 2 while it loads: only the latter two come out, and so does everything
    written after the import (fd 2 is restored)."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent(f"""
        import os, types, warnings
        os.write(2, {START_UP!r})
        os.write(2, b"E0000 00:00:1.0  1 op_kernel.cc:99] a real C++ error\\n")
        warnings.warn("a warning while loading", UserWarning)
        config = types.SimpleNamespace(list_physical_devices=lambda: [])
    """))
    code = textwrap.dedent("""
        import os, sys, warnings
        from dexterity_nb.common.quiet_import import tensorflow
        assert tensorflow.__file__.startswith(sys.argv[1]), tensorflow.__file__
        warnings.warn("a warning after loading", UserWarning)
        os.write(2, b"written to fd 2 after loading\\n")
    """)
    environment = {**learner_environment(), "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                            env=environment, cwd=REPOSITORY, timeout=120)
    assert result.returncode == 0, result.stderr
    expected_in_order = ["op_kernel.cc:99] a real C++ error", "UserWarning: a warning while loading",
                         "UserWarning: a warning after loading", "written to fd 2 after loading"]
    positions = [result.stderr.find(text) for text in expected_in_order]
    assert -1 not in positions and positions == sorted(positions), result.stderr
    assert not [line for line in result.stderr.splitlines() if "absl" in line or "I0000" in line or "cuInit" in line]


# ---------------------------------------------------------------- SDL
@pytest.mark.parametrize("already_set, expected", [
    ({}, "offscreen"),
    ({"SDL_VIDEODRIVER": "x11"}, "x11"),  # the user's choice stands
    ({"DISPLAY": ":0"}, None),  # a display: SDL chooses as usual
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
])
def test_sdl_is_told_offscreen_only_on_linux_without_a_display(monkeypatch, already_set, expected):
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    monkeypatch.setattr(os, "environ", {**environment, **already_set})  # this process's stays as it was
    monkeypatch.setattr(sys, "platform", "linux")
    episode._prefer_offscreen_video()
    assert os.environ.get("SDL_VIDEODRIVER") == expected


# ---------------------------------------------------------------- real runs
def test_building_drilling_evaluating_and_rendering_writes_nothing_to_stderr():
    code = textwrap.dedent("""
        import warnings
        import dexterity_nb
        from dexterity_nb import PPOAgent, get_model_builder, make_env
        from dexterity_nb.widgets import show_episode

        agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=["state"]),
                         horizon=16, workers=2, seed=0, verbose=False)
        agent.drill(1, 1, 16, verbose=False)
        agent.evaluate(1)
        show_episode(agent, max_frames=2, width=60, seed=0)
        # A recurrent agent's update is XLA-compiled at its first cycle: XLA's INFO lines are dropped too.
        memory = PPOAgent(get_model_builder("simple", "gru"), make_env("CartPole-v1", mask_velocity=True),
                          horizon=16, workers=2, seed=0, verbose=False)
        memory.drill(1, 1, 16, verbose=False)
        warnings.warn("a learner's warning", UserWarning)  # after all that, real warnings still show
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=learner_environment(), cwd=REPOSITORY, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "return" in result.stdout  # show_episode outside a notebook prints the episode
    others = [line for line in result.stderr.splitlines() if "UserWarning: a learner's warning" not in line]
    assert not others, "unexpected stderr:\n" + "\n".join(others)
    assert "UserWarning: a learner's warning" in result.stderr


def test_getting_started_notebook_shows_no_stderr():
    """Tutorial 01 imports the package, builds, drills with the live dashboard, evaluates and
    shows an episode: no cell may show a red (stderr) block."""
    import nbformat
    from nbclient import NotebookClient

    path = REPOSITORY / "tutorials" / "01_getting_started.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=learner_environment())
    red = [f"cell {index}: {output['text']}" for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
           for output in cell.outputs if output.get("output_type") == "stream" and output.get("name") == "stderr"]
    assert not red, "stderr in the notebook:\n" + "\n".join(red)


def test_many_agents_raise_no_retracing_warning_but_a_learners_own_retracing_still_warns():
    code = textwrap.dedent("""
        import tensorflow as tf  # the learner imports TensorFlow first
        from dexterity_nb import PPOAgent, get_model_builder, make_env

        def unnamed(observation_space, distribution):  # no config(): its agents trace functions of their own
            return get_model_builder("simple", "ffn")(observation_space, distribution)

        for seed in range(6):  # each agent traces its own functions once: not a retracing problem
            for builder in (get_model_builder("simple", "ffn"), unnamed):
                agent = PPOAgent(builder, make_env("MountainCar-v0"), horizon=16, workers=2, seed=seed, verbose=False,
                                 intrinsic="rnd")
                agent.drill(1, 1, 16, verbose=False)
        for size in range(1, 8):  # a learner's function retraced for every new shape: TensorFlow's advice applies
            tf.function(lambda x: x * 2)(tf.zeros(size))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=learner_environment(), cwd=REPOSITORY, timeout=300)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "triggered tf.function retracing" in line]
    assert warnings and all("<lambda>" in line and "NumpyForward" not in line for line in warnings), result.stderr
    assert "_compile" not in result.stderr and "RandomNetworkDistillation" not in result.stderr
