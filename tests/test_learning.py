"""A correctness test: the CLI's CartPole preset, seeded, must solve CartPole within a fixed budget."""

from dexterity_nb.agent.callbacks import StopAtReturn
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder
from dexterity_nb.presets import PRESETS, cycles_for


def test_cartpole_preset_reaches_475_in_deterministic_evaluation():
    preset = PRESETS["CartPole-v1"]
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", transformers=preset["transformers"]),
                     seed=0, verbose=False, **preset["agent"])
    drill, solved, cycles = preset["drill"], StopAtReturn(preset["target_return"]), cycles_for(preset)
    agent.drill(cycles, drill["epochs"], drill["batch_size"], callbacks=[solved], verbose=False)
    assert solved.solved_at is not None, f"not solved within {cycles} cycles ({preset['frames']:,} frames)"
    assert agent.drill_outcome == "stopped" and agent.cycle == solved.solved_at[0]
    evaluation = agent.evaluate(n_episodes=10, deterministic=True)
    assert evaluation.mean_return >= 475, evaluation
