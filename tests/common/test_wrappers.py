import gymnasium
import numpy as np
import pytest

from dexterity_nb.common.transformers import StateNormalizationTransformer
from dexterity_nb.common.wrappers import TransformedEnv, make_env


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
