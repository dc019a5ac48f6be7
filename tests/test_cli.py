import csv
import json
import os
import subprocess
import sys
import tempfile

import gymnasium
import pytest

from dexterity_nb import cli, presets


def test_cli_drill_saves_agent_curve_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["drill", "CartPole-v1", "--cycles", "3", "--horizon", "16", "--workers", "2",
                     "--epochs", "1", "--batch-size", "16", "--seed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cycle     3/3:" in printed
    assert (out / "agent.npz").exists() and (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((out / "evaluation.json").read_text())["returns"]) == 10
    assert cli.main(["evaluate", str(out), "--episodes", "2"]) == 0
    assert "2 deterministic episodes" in capsys.readouterr().out


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert cli.main(["drill", "CartPole-v0x"]) == 2
    assert "Unknown environment id 'CartPole-v0x'. Did you mean 'CartPole-v0'" in capsys.readouterr().err
    assert cli.main(["drill", "CartPole-v1", "--transformers", "state,rewards", "--cycles", "1"]) == 2
    assert "Unknown transformer 'rewards'" in capsys.readouterr().err


def test_python_dash_m_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "dexterity_nb", "drill", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--batch-size" in result.stdout


def test_importing_the_package_does_not_load_tensorflow():
    code = "import sys, dexterity_nb, dexterity_nb.common.transformers; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- every PPOAgent argument has a flag
class Drilled(Exception):
    """Raised by the stand-in agent's ``drill``: the CLI got that far."""


class RecordingAgent:
    """Stands in for PPOAgent: records what the CLI built it with, then stops the CLI at ``drill``."""

    built = []

    def __init__(self, model_builder, env, **kwargs):
        RecordingAgent.built.append(dict(kwargs, model=model_builder.name, transformers=[type(t).__name__ for t in env.transformers]))
        RecordingAgent.model_type = model_builder.model_type

    def drill(self, n, epochs, batch_size, callbacks=None):
        raise Drilled(n, epochs, batch_size, callbacks)


class AgentMustNotBeBuilt:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the agent was built before the arguments were checked")


def _built_with(monkeypatch, tmp_path, *flags):
    RecordingAgent.built = []
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", RecordingAgent)
    with pytest.raises(Drilled) as drilled:
        cli.main(["drill", "CartPole-v1", "--out", str(tmp_path / "run"), *flags])
    (kwargs,) = RecordingAgent.built
    return kwargs, drilled.value.args


def test_every_flag_reaches_the_agent(tmp_path, monkeypatch):
    kwargs, (cycles, epochs, batch_size, _) = _built_with(
        monkeypatch, tmp_path, "--cycles", "4", "--epochs", "3", "--batch-size", "24", "--horizon", "16",
        "--workers", "2", "--learning-rate", "0.002", "--lr-schedule", "linear", "--discount", "0.9", "--lam", "0.7",
        "--clip", "0.3", "--c-entropy", "0.02", "--c-value", "0.8", "--gradient-clipping", "none", "--value-clip", "0.4",
        "--distribution", "categorical", "--model", "wide", "--seed", "3", "--transformers", "state,reward")
    assert kwargs == dict(horizon=16, workers=2, learning_rate=0.002, lr_schedule="linear", discount=0.9, lam=0.7,
                          clip=0.3, c_entropy=0.02, c_value=0.8, gradient_clipping=None, value_clip=0.4,
                          distribution="categorical", seed=3, model="wide",
                          transformers=["StateNormalizationTransformer", "RewardNormalizationTransformer"])
    assert (cycles, epochs, batch_size) == (4, 3, 24)


def test_the_recurrent_flags_reach_the_agent(tmp_path, monkeypatch):
    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1", "--model-type", "lstm", "--chunk-length", "8",
                            "--mask-velocity")
    assert (kwargs["chunk_length"], kwargs["model"], RecordingAgent.model_type) == (8, "simple", "lstm")
    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1")
    assert "chunk_length" not in kwargs and RecordingAgent.model_type == "ffn"


def test_the_curiosity_flags_reach_the_agent(tmp_path, monkeypatch):
    from dexterity_nb.agent.curiosity import CountBonus, RandomNetworkDistillation

    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1", "--intrinsic", "counts", "--intrinsic-weight", "0.5",
                            "--transformers", "none")
    assert isinstance(kwargs["intrinsic"], CountBonus) and kwargs["intrinsic"].weight == 0.5
    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1", "--intrinsic", "rnd")
    assert isinstance(kwargs["intrinsic"], RandomNetworkDistillation) and kwargs["intrinsic"].weight == 1.0
    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1")
    assert "intrinsic" not in kwargs


def test_a_curious_drill_logs_the_intrinsic_return_and_saves_the_counts(tmp_path, capsys):
    out = tmp_path / "curious"
    assert cli.main(["drill", "MountainCar-v0", "--intrinsic", "counts", "--transformers", "reward", "--cycles", "2",
                     "--horizon", "128", "--workers", "2", "--epochs", "1", "--batch-size", "64", "--seed", "0",
                     "--out", str(out)]) == 0
    capsys.readouterr()
    header, *rows = (out / "progress.csv").read_text().splitlines()
    assert "intrinsic_return" in header.split(",") and "intrinsic_cells_visited" in header.split(",") and len(rows) == 2
    from dexterity_nb.agent.ppo_agent import PPOAgent

    loaded = PPOAgent.load(out / "agent.npz")
    assert type(loaded.intrinsic).__name__ == "CountBonus" and loaded.intrinsic.counts.sum() == 2 * 128 * 2


def test_the_words_for_off_constant_and_auto(tmp_path, monkeypatch):
    kwargs, _ = _built_with(monkeypatch, tmp_path, "--cycles", "1", "--gradient-clipping", "1.5", "--value-clip", "None",
                            "--lr-schedule", "constant", "--distribution", "auto")
    assert (kwargs["gradient_clipping"], kwargs["value_clip"], kwargs["lr_schedule"], kwargs["distribution"]) == (1.5, None, None, None)


def test_flags_left_out_take_the_preset(tmp_path, monkeypatch):
    preset = presets.preset_for("CartPole-v1")
    kwargs, (_, epochs, batch_size, callbacks) = _built_with(monkeypatch, tmp_path, "--cycles", "1")
    assert {name: kwargs[name] for name in preset["agent"]} == preset["agent"]
    assert (epochs, batch_size) == (preset["drill"]["epochs"], preset["drill"]["batch_size"])
    assert kwargs["seed"] is None and kwargs["model"] == "simple"
    # progress.csv always; the preset's target as StopAtReturn; no TensorBoard unless asked.
    assert [type(callback).__name__ for callback in callbacks] == ["CSVLogger", "StopAtReturn"]
    assert callbacks[0].path == str((tmp_path / "run" / "progress.csv").resolve())


@pytest.mark.parametrize("flag, value, message", [
    ("--discount", "1.5", "must be a number in [0, 1], got 1.5"),
    ("--lam", "-0.1", "must be a number in [0, 1], got -0.1"),
    ("--clip", "0", "must be a positive number, got 0"),
    ("--clip", "10.5", "must be at most 10, got 10.5"),
    ("--c-entropy", "nan", "must be a number in [0, 100], got nan"),
    ("--c-value", "-1", "must be a number in [0, 100], got -1"),
    ("--gradient-clipping", "0", "must be a positive number or none, got 0"),
    ("--value-clip", "off", "must be a positive number or none, got off"),
    ("--learning-rate", "11", "must be at most 10, got 11"),
    ("--lr-schedule", "cosine", "invalid choice: 'cosine' (choose from constant, linear)"),
    ("--model", "huge", "must be a registered model builder (deep, simple, wide), got huge"),
    ("--distribution", "poisson", "must be auto or one of categorical, gaussian, beta, got poisson"),
    ("--frames", "0", "must be a positive int, got 0"),
    ("--intrinsic", "icm", "invalid choice: 'icm' (choose from rnd, counts)"),
    ("--intrinsic-weight", "-1", "must be a finite number ≥ 0, got -1"),
])
def test_new_flags_are_checked_when_parsed(flag, value, message, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    with pytest.raises(SystemExit) as exit:
        cli.main(["drill", "CartPole-v1", flag, value])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}: " in error and message.replace("'", "") in error.replace("'", "")


# ---------------------------------------------------------------- logging
def test_a_drill_writes_progress_csv_one_row_per_cycle_and_tensorboard_events(tmp_path, capsys):
    out, board = tmp_path / "run", tmp_path / "board"
    assert cli.main(["drill", "CartPole-v1", "--cycles", "2", "--horizon", "16", "--workers", "2", "--batch-size", "32",
                     "--epochs", "1", "--seed", "0", "--out", str(out), "--tensorboard", str(board)]) == 0
    with open(out / "progress.csv", newline="") as progress:
        rows = list(csv.DictReader(progress))
    assert [row["cycle"] for row in rows] == ["1", "2"]
    assert [int(row["frames"]) for row in rows] == [32, 64]
    assert "episode_returns" not in rows[0]
    assert list(board.glob("events.out.tfevents.*")), "TensorBoard wrote no event file"
    assert f"its progress to {out / 'progress.csv'}" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["inside a file", "a file"])
def test_an_unusable_tensorboard_folder_fails_before_anything_is_built(where, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    board = a_file / "board" if where == "inside a file" else a_file
    assert cli.main(["drill", "CartPole-v1", "--cycles", "1", "--out", str(tmp_path / "run"), "--tensorboard", str(board)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dexterity-nb: error: --tensorboard: `log_dir` ") and str(board) in error and error.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


def test_an_unwritable_tensorboard_folder_fails_before_anything_is_built(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", AgentMustNotBeBuilt)
    real = tempfile.TemporaryFile
    locked = tmp_path / "locked"
    locked.mkdir()

    def refuse(*args, dir=None, **kwargs):  # as root every folder is writable: refuse this one
        if dir is not None and os.path.abspath(dir) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert cli.main(["drill", "CartPole-v1", "--out", str(tmp_path / "run"), "--tensorboard", str(locked / "board")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"dexterity-nb: error: --tensorboard: `log_dir` {locked / 'board'} cannot be written")


# ---------------------------------------------------------------- Box2D missing when evaluating
def test_evaluating_a_saved_lunar_lander_without_box2d_says_what_to_install(tmp_path, capsys, monkeypatch):
    pytest.importorskip("Box2D", reason="saving a LunarLander agent needs Box2D (the test extra installs it)")
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    PPOAgent(get_model_builder("simple", "ffn"), make_env("LunarLander-v3"), horizon=8, workers=1,
             verbose=False).save(tmp_path / "agent.npz")

    def missing(*args, **kwargs):
        raise gymnasium.error.DependencyNotInstalled("Box2D is not installed, you can install it by run `pip install swig`")

    monkeypatch.setattr(gymnasium, "make", missing)
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dexterity-nb: error: LunarLander-v3 needs box2d") and error.strip().count("\n") == 0
    assert "pip install -e '.[box2d]'" in error and 'pip install "dexterity_nb[box2d]"' in error


def test_presets_and_the_new_flag_errors_do_not_load_tensorflow():
    code = (
        "import sys\nfrom dexterity_nb import cli\n"
        "assert cli.main(['presets']) == 0 and cli.main(['presets', 'LunarLander-v3']) == 0\n"
        "for flag, value in (('--discount', '2'), ('--value-clip', '0'), ('--model', 'huge')):\n"
        "    try:\n        cli.main(['drill', 'CartPole-v1', flag, value])\n"
        "    except SystemExit as exit:\n        assert exit.code == 2\n"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]


def test_mask_velocity_drills_and_saves_a_velocity_free_agent(tmp_path, capsys):
    out = tmp_path / "masked"
    assert cli.main(["drill", "CartPole-v1", "--mask-velocity", "--cycles", "1", "--horizon", "16", "--workers", "2",
                     "--epochs", "1", "--batch-size", "16", "--seed", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    from dexterity_nb.agent.ppo_agent import PPOAgent

    loaded = PPOAgent.load(out / "agent.npz")
    assert loaded.env.observation_space.shape == (2,)  # x and θ; ẋ and θ̇ are gone
    assert cli.main(["evaluate", str(out), "--episodes", "1"]) == 0


@pytest.mark.parametrize("arguments, message", [
    (["drill", "Taxi-v4", "--mask-velocity", "--cycles", "1"],
     "does not know which observation components of 'Taxi-v4' are velocities"),
    (["drill", "CartPole-v1", "--chunk-length", "8", "--cycles", "1"],
     "--chunk-length is the training sequence length of recurrent networks; add --model-type gru"),
    (["drill", "MountainCar-v0", "--intrinsic-weight", "2", "--cycles", "1"],
     "--intrinsic-weight is the weight β of a curiosity bonus; add --intrinsic rnd"),
    (["drill", "MountainCar-v0", "--intrinsic", "counts", "--cycles", "1"],  # the preset normalises states
     "--intrinsic counts counts visits on a grid over MountainCar-v0's own observation bounds"),
])
def test_a_flag_that_cannot_work_fails_before_tensorflow_loads(arguments, message):
    code = f"import sys; from dexterity_nb import cli; code = cli.main({arguments!r}); print(code, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split()[-2:] == ["2", "False"], result.stdout + result.stderr
    assert message in result.stderr


def test_a_recurrent_model_type_drills_saves_and_evaluates(tmp_path, capsys):
    out = tmp_path / "memory"
    assert cli.main(["drill", "CartPole-v1", "--mask-velocity", "--model-type", "gru", "--chunk-length", "8",
                     "--cycles", "2", "--horizon", "16", "--workers", "2", "--epochs", "1", "--batch-size", "16",
                     "--seed", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    from dexterity_nb.agent.ppo_agent import PPOAgent

    loaded = PPOAgent.load(out / "agent.npz")
    assert loaded.recurrent and loaded.chunk_length == 8 and loaded.model_builder.model_type == "gru"
    assert cli.main(["evaluate", str(out), "--episodes", "1"]) == 0
