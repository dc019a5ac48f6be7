import gymnasium
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from dexterity_nb.common import wrappers
from dexterity_nb.common.transformers import StateNormalizationTransformer
from dexterity_nb.common.wrappers import (
    VELOCITY_INDICES,
    MaskVelocity,
    TransformedEnv,
    make_env,
    masks_velocity,
    register_velocity_indices,
)


def test_unknown_env_id_suggests_close_matches():
    with pytest.raises(ValueError, match="Unknown environment id 'CartPole-v2'.*'CartPole-v1'"):
        make_env("CartPole-v2")


def test_transformers_apply_and_original_reward_is_kept():
    env = make_env("CartPole-v1", transformers=["state", "reward"], seed=3)
    assert isinstance(env, TransformedEnv)
    observation, _ = env.reset()
    assert observation.dtype == np.float32
    _, reward, _, _, info = env.step(0)
    assert info["original_reward"] == 1.0
    assert reward != 1.0  # scaled by the running std of the return


def test_frozen_env_does_not_update_statistics():
    env = make_env("CartPole-v1", transformers=[StateNormalizationTransformer], seed=0)
    env.reset()
    statistics = env.transformers[0].statistics
    count = statistics.count
    env.frozen = True
    env.step(1)
    assert statistics.count == count


def test_seed_makes_first_episode_reproducible():
    first = make_env("CartPole-v1", seed=7).reset()[0]
    second = make_env("CartPole-v1", seed=7).reset()[0]
    np.testing.assert_array_equal(first, second)


def test_instances_and_callables_give_independent_worker_copies():
    base = gymnasium.make("CartPole-v1")
    env = make_env(base)
    copy_one, copy_two = env.make_worker_env(), env.make_worker_env()
    assert copy_one is not copy_two and copy_one is not base
    assert make_env(lambda: gymnasium.make("Pendulum-v1")).action_space.shape == (1,)
    with pytest.raises(TypeError, match="only apply to an env id"):
        make_env(base, render_mode="rgb_array")


# ------------------------------------------------------------------ velocity-free tasks
# What gymnasium's sources say each observation holds; the velocities are the starred ones.
EXPECTED_VELOCITIES = {
    "CartPole-v1": [1, 3],  # x, *ẋ*, θ, *θ̇*
    "Pendulum-v1": [2],  # cos θ, sin θ, *θ̇*
    "MountainCar-v0": [1],  # position, *velocity*
    "MountainCarContinuous-v0": [1],
    "Acrobot-v1": [4, 5],  # cos θ₁, sin θ₁, cos θ₂, sin θ₂, *θ̇₁*, *θ̇₂*
    "LunarLander-v3": [2, 3, 5],  # x, y, *ẋ*, *ẏ*, angle, *angular velocity*, two legs
    "LunarLanderContinuous-v3": [2, 3, 5],
}


def test_every_classic_task_is_known_with_its_velocity_positions():
    for env_id, velocities in EXPECTED_VELOCITIES.items():
        assert list(VELOCITY_INDICES[env_id]) == velocities, env_id


@pytest.mark.parametrize("env_id", sorted(EXPECTED_VELOCITIES))
def test_masked_episode_is_the_unmasked_one_without_velocities(env_id):
    if env_id.startswith("LunarLander"):
        pytest.importorskip("Box2D")
    plain, masked = gymnasium.make(env_id), make_env(env_id, mask_velocity=True)
    kept = [index for index in range(plain.observation_space.shape[0]) if index not in EXPECTED_VELOCITIES[env_id]]
    assert masked.observation_space == gymnasium.spaces.Box(
        plain.observation_space.low[kept], plain.observation_space.high[kept], dtype=plain.observation_space.dtype)
    assert masked.make_worker_env().observation_space == masked.observation_space  # every worker's copy is masked
    full, _ = plain.reset(seed=5)
    observation, _ = masked.reset(seed=5)
    np.testing.assert_array_equal(observation, full[kept])
    plain.action_space.seed(5)
    for _ in range(60):  # one seeded stretch of an episode, the same actions in both
        action = plain.action_space.sample()
        full, full_reward, full_terminated, full_truncated, _ = plain.step(action)
        observation, reward, terminated, truncated, _ = masked.step(action)
        np.testing.assert_array_equal(observation, full[kept])
        assert masked.observation_space.contains(observation)
        assert (reward, terminated, truncated) == (full_reward, full_terminated, full_truncated)
        if full_terminated or full_truncated:
            break


def test_mask_velocity_is_a_gymnasium_wrapper_over_instances_and_functions():
    wrapped = MaskVelocity(gymnasium.make("CartPole-v1"))
    assert isinstance(wrapped, gymnasium.ObservationWrapper) and wrapped.observation_space.shape == (2,)
    assert [spec.name for spec in wrapped.spec.additional_wrappers] == ["MaskVelocity"]
    assert masks_velocity(wrapped) and not masks_velocity(gymnasium.make("CartPole-v1"))
    from_instance = make_env(gymnasium.make("Pendulum-v1"), mask_velocity=True)
    from_function = make_env(lambda: gymnasium.make("Pendulum-v1"), mask_velocity=True)
    for env in (from_instance, from_function):
        assert env.observation_space.shape == (2,) and env.make_worker_env().observation_space.shape == (2,)
    assert from_instance.recipe == {"id": "Pendulum-v1", "kwargs": {}, "mask_velocity": True}
    assert from_function.recipe is None
    # An instance wrapped by hand is recorded as masked, so that a saved agent loads masked again.
    assert make_env(wrapped).recipe == {"id": "CartPole-v1", "kwargs": {}, "mask_velocity": True}
    assert make_env("CartPole-v1").recipe == {"id": "CartPole-v1", "kwargs": {}, "mask_velocity": False}


def test_state_normalisation_sees_only_the_kept_components():
    env = make_env("Acrobot-v1", transformers=["state"], mask_velocity=True, seed=0)
    observation, _ = env.reset()
    assert observation.shape == (4,) and env.transformers[0].statistics.mean.shape == (4,)


def test_unknown_tasks_name_the_known_ones_and_how_to_add_one():
    with pytest.raises(ValueError, match=r"does not know .* 'FrozenLake-v1' .* It knows CartPole-v1, Pendulum-v1.*"
                                         r"register_velocity_indices\('FrozenLake-v1', \[1, 3\]\)"):
        make_env("FrozenLake-v1", mask_velocity=True)
    with pytest.raises(ValueError, match="Did you mean 'Acrobot-v1'"):
        MaskVelocity(_env_with_id("Acrobot-v0"))
    with pytest.raises(ValueError, match=r"env.spec is None.*gymnasium.register"):
        make_env(CartPoleEnv(), mask_velocity=True)  # made without gymnasium.make: no id


def _env_with_id(env_id):
    """A CartPole whose spec carries another id (to test the lookup by id without registering anything)."""
    env = CartPoleEnv()
    env.spec = gymnasium.envs.registration.EnvSpec(env_id, entry_point="none:none")
    return env


def test_bad_arguments_are_refused_before_any_env_is_made():
    with pytest.raises(TypeError, match=r"`mask_velocity` must be True or False, got 'yes'"):
        make_env("CartPole-v1", mask_velocity="yes")
    with pytest.raises(ValueError, match="already masks its velocities"):
        make_env(MaskVelocity(gymnasium.make("CartPole-v1")), mask_velocity=True)
    with pytest.raises(ValueError, match="Unknown environment id 'CartPol-v1'"):
        make_env("CartPol-v1", mask_velocity=True)


def test_register_velocity_indices_adds_a_task(monkeypatch):
    monkeypatch.setattr(wrappers, "VELOCITY_INDICES", dict(VELOCITY_INDICES))
    monkeypatch.setitem(gymnasium.registry, "PoleOnly-v0", gymnasium.envs.registration.EnvSpec(
        "PoleOnly-v0", entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=20))
    register_velocity_indices("PoleOnly-v0", [3, 1])
    assert wrappers.VELOCITY_INDICES["PoleOnly-v0"] == (1, 3)
    assert make_env("PoleOnly-v0", mask_velocity=True).observation_space.shape == (2,)
    register_velocity_indices("PoleOnly-v0", [7])
    with pytest.raises(ValueError, match=r"registered at positions \[7\].*register_velocity_indices\('PoleOnly-v0'"):
        make_env("PoleOnly-v0", mask_velocity=True)
    for indices in ([], [1, 1], [-1], ["1"], None):
        with pytest.raises(ValueError, match=r"`indices` must be distinct positions ≥ 0"):
            register_velocity_indices("PoleOnly-v0", indices)
    with pytest.raises(TypeError, match="`env_id` must be a gymnasium id"):
        register_velocity_indices(3, [1])
