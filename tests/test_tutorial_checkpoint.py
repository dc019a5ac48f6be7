"""The LunarLander checkpoint that tutorial 09 loads is what the command line's preset makes.

Tutorial 09 says the file is `dexterity-nb drill LunarLander-v3 --seed 0 --cycles 24`. If the
preset changes, these tests fail; regenerate the file with that command (the agent is saved as
`<out>/agent.npz`) and copy it over.
"""

from pathlib import Path

import pytest

pytest.importorskip("Box2D")

from dexterity_nb import presets  # noqa: E402
from dexterity_nb.agent.ppo_agent import PPOAgent  # noqa: E402
from dexterity_nb.cli import _agent_options, _parser  # noqa: E402

CHECKPOINT = Path(__file__).resolve().parents[1] / "tutorials" / "checkpoints" / "LunarLander-v3-seed0-cycle24.npz"
COMMAND = ["drill", "LunarLander-v3", "--seed", "0", "--cycles", "24"]


@pytest.fixture(scope="module")
def shipped():
    return PPOAgent.load(CHECKPOINT)


def test_the_checkpoint_has_the_presets_hyperparameters_and_seed(shipped):
    preset = presets.preset_for("LunarLander-v3")
    expected = _agent_options(_parser().parse_args(COMMAND), preset)
    saved = shipped.hyperparameters()
    assert {name: saved[name] for name in expected} == expected
    assert saved["seed"] == 0
    assert shipped.env.spec.id == "LunarLander-v3"
    assert shipped.transformers == [] == preset["transformers"]


def test_the_checkpoint_stopped_after_24_cycles_of_the_presets_drill(shipped):
    assert shipped.cycle == 24
    assert shipped.frames == 24 * shipped.horizon * shipped.workers
    assert [entry["cycle"] for entry in shipped.history] == list(range(1, 25))
