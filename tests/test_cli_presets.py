"""``dexterity-nb presets`` and how the CLI turns a frame budget into cycles."""

import importlib.util

import gymnasium
import pytest

from dexterity_nb import cli, presets


class Drilled(Exception):
    """Raised by the stand-in agent's ``drill``: carries the cycles the CLI asked for."""


class RecordingAgent:
    """Stands in for PPOAgent: records its arguments, then stops the CLI at ``drill``."""

    built = []

    def __init__(self, model_builder, env, **kwargs):
        RecordingAgent.built.append(kwargs)

    def assign_gatherer(self, gatherer):
        pass

    def drill(self, n, epochs, batch_size, callbacks=None):
        raise Drilled(n, epochs, batch_size)


@pytest.fixture
def recording_agent(monkeypatch):
    RecordingAgent.built = []
    monkeypatch.setattr("dexterity_nb.agent.ppo_agent.PPOAgent", RecordingAgent)
    return RecordingAgent


def _drilled(arguments):
    with pytest.raises(Drilled) as drilled:
        cli.main(arguments)
    return drilled.value.args


def test_the_rounding_message_in_the_words_of_the_issue():
    assert cli.describe_rounding("LunarLander-v3", 1_000_000, 16_384) == (
        "LunarLander-v3: 1,000,000 frames is 61.04 cycles of 16,384 frames; drilling 62 cycles (1,015,808 frames).")
    assert cli.describe_rounding("CartPole-v1", 1024, 512) is None
    assert [cli.cycles_for_frames(frames, 512) for frames in (1, 511, 512, 513, 1024)] == [1, 1, 1, 2, 2]


def test_frames_round_up_to_whole_cycles_and_say_so(tmp_path, recording_agent, capsys):
    # 1,000 frames / (16 × 3) = 20.83 cycles → 21 cycles, 1,008 frames.
    arguments = ["drill", "CartPole-v1", "--frames", "1000", "--horizon", "16", "--workers", "3", "--out", str(tmp_path / "run")]
    assert _drilled(arguments)[0] == 21
    assert "CartPole-v1: 1,000 frames is 20.83 cycles of 48 frames; drilling 21 cycles (1,008 frames)." in capsys.readouterr().out
    arguments[3] = "960"  # exactly 20 cycles: nothing to say
    assert _drilled(arguments)[0] == 20
    assert "frames is" not in capsys.readouterr().out


def test_without_cycles_or_frames_the_preset_budget_is_drilled(tmp_path, recording_agent):
    preset = presets.preset_for("CartPole-v1")
    frames_per_cycle = preset["agent"]["horizon"] * preset["agent"]["workers"]
    expected = -(-cli.frame_budget(preset) // frames_per_cycle)
    assert _drilled(["drill", "CartPole-v1", "--out", str(tmp_path / "run")])[0] == expected
    # With another horizon the same budget is cut into other cycles.
    frames_per_cycle = 32 * preset["agent"]["workers"]
    expected = -(-cli.frame_budget(preset) // frames_per_cycle)
    assert _drilled(["drill", "CartPole-v1", "--horizon", "32", "--out", str(tmp_path / "run")])[0] == expected


def test_cycles_win_over_the_budget_and_an_older_preset_with_cycles_still_works(tmp_path, recording_agent, monkeypatch):
    assert _drilled(["drill", "CartPole-v1", "--cycles", "3", "--out", str(tmp_path / "run")])[0] == 3
    older = {"transformers": ["state"], "agent": dict(horizon=32, workers=4), "target_return": None,
             "drill": dict(cycles=7, epochs=2, batch_size=64)}
    monkeypatch.setattr(presets, "preset_for", lambda env_id: older)
    assert _drilled(["drill", "CartPole-v1", "--out", str(tmp_path / "run")]) == (7, 2, 64)
    assert cli.frame_budget(older) == 7 * 32 * 4


def test_frames_and_cycles_together_are_refused_before_anything_is_built(recording_agent, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["drill", "CartPole-v1", "--cycles", "3", "--frames", "1000"])
    assert exit.value.code == 2
    assert "argument --frames: not allowed with argument --cycles" in capsys.readouterr().err
    assert recording_agent.built == []


def test_presets_lists_every_task_with_budget_target_extra_and_source(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["task", "frames", "target", "extra", "source"]
    for env_id, preset in presets.PRESETS.items():
        row = next(line for line in lines if line.split()[0] == env_id)
        target = preset.get("target_return")
        assert row.split()[1:4] == [f"{cli.frame_budget(preset):,}", "-" if target is None else f"{target:g}",
                                    cli.extra_of(env_id, preset) or "-"]
        assert row.endswith(preset.get("source", "-"))


def test_presets_env_shows_every_setting_as_its_flag(capsys):
    assert cli.main(["presets", "CartPole-v1"]) == 0
    shown = capsys.readouterr().out
    preset = presets.PRESETS["CartPole-v1"]
    assert shown.startswith("CartPole-v1:\n")
    assert f"frames        {cli.frame_budget(preset):,}: " in shown
    for name, value in {**preset["agent"], **preset["drill"]}.items():
        if name != "cycles":
            assert f"--{name.replace('_', '-')}" in shown
    if "lr_schedule" in preset["agent"] and preset["agent"]["lr_schedule"] is None:
        assert "--lr-schedule        constant\n" in shown  # PPOAgent's None, in the flag's own word


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "BipedalWalker-v3"])
def test_presets_env_names_the_extra_and_how_to_install_it(env_id, capsys, monkeypatch):
    assert cli.extra_of(env_id, presets.PRESETS.get(env_id)) == "box2d"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "Box2D" else real_find_spec(name, *rest))
    assert cli.main(["presets", env_id]) == 0
    assert "extra         box2d (not installed here: pip install \"dexterity_nb[box2d]\"" in capsys.readouterr().out


def test_presets_of_an_id_without_a_preset_show_the_default(capsys):
    env_id = next(env_id for env_id in gymnasium.registry if env_id.startswith("FrozenLake") and env_id not in presets.PRESETS)
    assert cli.main(["presets", env_id]) == 0
    assert capsys.readouterr().out.startswith(f"{env_id} has no preset of its own; drill uses the default:\n")


@pytest.mark.parametrize("typed, suggested", [
    ("LunarLander-v2", "'LunarLander-v3'"),
    ("Cartpole-v1", "'CartPole-v1'"),
    ("bipedalwalker-v3", "'BipedalWalker-v3'"),
])
def test_presets_of_an_unknown_task_names_the_close_matches(typed, suggested, capsys):
    assert cli.main(["presets", typed]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"dexterity-nb: error: No preset for {typed!r}, and gymnasium has no such id. Did you mean {suggested}")
    assert error.strip().count("\n") == 0


def test_presets_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    # `true` exits at once, so the table is written into a pipe nobody reads any more.
    completed = subprocess.run(f'"{sys.executable}" -m dexterity_nb presets | true', shell=True,
                               capture_output=True, text=True, timeout=60)
    assert "Traceback" not in completed.stderr and "BrokenPipeError" not in completed.stderr
