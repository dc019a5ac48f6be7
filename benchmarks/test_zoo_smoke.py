"""Smoke test of ``python -m benchmarks.zoo --quick``: ``pytest benchmarks/test_zoo_smoke.py``.

Two classic-control presets, two cycles each, one seed: checks that every subprocess runs, the
table and the JSON come out well formed, and the presets follow the schema the CLI reads. It
asserts nothing about scores or speed (those belong to the full run, read as ratios).
"""

import json
import math

import pytest

from benchmarks.smoke import available, run_benchmark
from dexterity_nb.presets import DEFAULT_PRESET, PRESETS, cycles_for

PRESET_KEYS = {"transformers", "agent", "drill", "frames", "target_return", "extra", "source"}
HEADER = ["task", "Zoo score", "target", "ours median", "at target", "frames", "wall s", "SB3 µs/frame",
          "ours µs/frame", "ratio"]


@pytest.mark.parametrize("env_id", [*PRESETS, None])
def test_presets_follow_the_schema(env_id):
    preset = DEFAULT_PRESET if env_id is None else PRESETS[env_id]
    assert set(preset) == PRESET_KEYS, env_id
    assert set(preset["drill"]) == {"epochs", "batch_size"}
    assert preset["drill"]["batch_size"] <= preset["agent"]["horizon"] * preset["agent"]["workers"]
    assert isinstance(preset["frames"], int) and preset["frames"] > 0
    assert preset["extra"] in (None, "box2d")
    assert preset["source"].startswith(("RL Baselines3 Zoo", "tuned here", "SB3"))
    assert cycles_for(preset) == math.ceil(preset["frames"] / (preset["agent"]["horizon"] * preset["agent"]["workers"]))


@pytest.mark.parametrize("env_id", list(PRESETS))
def test_presets_build_an_agent(env_id):
    """Every preset's agent kwargs and transformers are accepted (Box2D tasks need the extra)."""
    if PRESETS[env_id]["extra"] == "box2d" and not available("Box2D"):
        pytest.skip("gymnasium[box2d] not installed: pip install 'dexterity_nb[box2d]'")
    from dexterity_nb.agent.ppo_agent import PPOAgent
    from dexterity_nb.common.wrappers import make_env
    from dexterity_nb.models import get_model_builder

    preset = PRESETS[env_id]
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env(env_id, transformers=preset["transformers"]),
                     verbose=False, **preset["agent"])
    assert agent.horizon * agent.workers >= preset["drill"]["batch_size"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    completed = run_benchmark("zoo", "--quick", "--out", str(out), timeout=600)
    return completed, out


def test_command_prints_the_table(quick_run):
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    header = [line for line in completed.stdout.splitlines() if line.startswith("task ")]
    assert header, completed.stdout
    for title in HEADER:
        assert title in header[0]
    assert "CartPole-v1" in completed.stdout and "Pendulum-v1" in completed.stdout


def test_json_holds_our_runs(quick_run):
    _, out = quick_run
    report = json.loads((out / "zoo.json").read_text())
    assert report["quick"] is True
    assert [row["task"] for row in report["table"]] == ["CartPole-v1", "Pendulum-v1"]
    for row in report["table"]:
        assert row["at_target"] is None and row["ratio_met"] is None, "a quick run must not claim a target"
        assert row["runs"] == 1 and row["failed"] == 0, row
    for env_id, runs in report["results"].items():
        run = runs["ours"][0]
        assert "error" not in run, run
        assert run["frames"] == 2 * PRESETS[env_id]["agent"]["horizon"] * PRESETS[env_id]["agent"]["workers"]
        assert len(run["eval_returns"]) == 2 and all(math.isfinite(r) for r in run["eval_returns"])
        assert run["slice_seconds"] > 0 and run["learn_seconds"] >= run["slice_seconds"]


@pytest.mark.skipif(not (available("torch") and available("stable_baselines3")),
                    reason="bench extra (torch, stable-baselines3) not installed")
def test_sb3_side_measured_the_same_slice(quick_run):
    _, out = quick_run
    report = json.loads((out / "zoo.json").read_text())
    assert report["sb3_measured"]
    for env_id, runs in report["results"].items():
        run = runs["sb3"][0]
        assert "error" not in run, run
        assert run["frames"] == runs["ours"][0]["slice_frames"]
        assert run["seconds_per_frame"] > 0
    assert all(row["ratio"] is not None for row in report["table"])
