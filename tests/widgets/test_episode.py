"""show_episode: headless rendering with bounded memory, and a working frame slider."""

import gymnasium
import pytest

from dexterity_nb.widgets.episode import record_episode, show_episode


class AlwaysLeft:
    """A stand-in agent: the episode viewer only needs `act` (and `env.spec` for the id)."""

    env = gymnasium.make("CartPole-v1")

    def act(self, observation, deterministic=False):
        return 0


def test_long_episodes_keep_at_most_max_frames():
    env = gymnasium.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=200)

    class Balancer(AlwaysLeft):
        def act(self, observation, deterministic=False):
            return int(observation[2] + 0.5 * observation[3] > 0)

    recording = record_episode(Balancer(), env, max_frames=16, width=120, seed=0)
    assert recording["length"] > 32, "the balancer should survive long enough to subsample"
    assert len(recording["frames"]) <= 16 and recording["stride"] > 1
    assert all(frame.startswith(b"\x89PNG") for frame in recording["frames"])


def test_show_episode_outside_a_notebook_prints_and_the_slider_changes_the_image(capsys):
    player = show_episode(AlwaysLeft(), max_frames=50, seed=0)
    assert "return" in capsys.readouterr().out
    assert player.length == len(player.frames) - 1 and player.total_return == player.length
    player.build()
    player.slider.value = 3
    assert player.image.value == player.frames[3]


def test_an_env_without_rgb_array_rendering_is_explained():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_episode(AlwaysLeft(), gymnasium.make("CartPole-v1"))


def test_an_agent_trained_without_velocities_plays_without_them():
    from dexterity_nb.common.wrappers import make_env

    class PositionsOnly(AlwaysLeft):
        env = make_env("CartPole-v1", mask_velocity=True)

        def act(self, observation, deterministic=False):
            assert observation.shape == (2,), "the agent must see what it was trained on: (x, θ)"
            return int(observation[1] > 0)

    recording = record_episode(PositionsOnly(), max_frames=8, width=60, seed=0)
    assert recording["length"] > 0
    assert record_episode(PositionsOnly(), "CartPole-v1", max_frames=8, width=60, seed=0)["length"] > 0
