import gymnasium
import numpy as np
import pytest

from dexterity_nb.common.transformers import (
    RewardNormalizationTransformer,
    RunningMeanStd,
    StateNormalizationTransformer,
    merge_moments,
    resolve_transformer,
)


def test_merge_moments_equals_numpy_over_all_data():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, size=(17, 4)), rng.normal(-1.0, 0.5, size=(40, 4))
    count, mean, var = merge_moments(len(a), a.mean(0), a.var(0), len(b), b.mean(0), b.var(0))
    both = np.concatenate([a, b])
    assert count == 57
    np.testing.assert_allclose(mean, both.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, both.var(0), rtol=1e-12)


def test_merge_with_empty_sample_is_identity():
    count, mean, var = merge_moments(0, np.zeros(2), np.ones(2), 5, np.array([1.0, 2.0]), np.array([0.5, 0.25]))
    assert count == 5
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    np.testing.assert_array_equal(var, [0.5, 0.25])


def test_running_statistics_of_per_worker_streams_merge_exactly():
    rng = np.random.default_rng(1)
    streams = [rng.normal(i, 1 + i, size=(25 + 10 * i, 3)) for i in range(3)]
    per_worker = []
    for stream in streams:
        statistics = RunningMeanStd((3,))
        for chunk in np.array_split(stream, 4):
            statistics.update(chunk)
        per_worker.append(statistics)
    merged = RunningMeanStd((3,))
    for statistics in per_worker:
        merged.merge(statistics)
    everything = np.concatenate(streams)
    assert merged.count == len(everything)
    np.testing.assert_allclose(merged.mean, everything.mean(0), rtol=1e-10)
    np.testing.assert_allclose(merged.var, everything.var(0), rtol=1e-10)


def test_running_statistics_state_round_trip():
    statistics = RunningMeanStd((2,))
    statistics.update(np.arange(10.0).reshape(5, 2))
    copy = RunningMeanStd((2,))
    copy.set_state(statistics.get_state())
    assert copy.count == 5
    np.testing.assert_array_equal(copy.mean, statistics.mean)
    np.testing.assert_array_equal(copy.var, statistics.var)


def test_state_normalization_gives_clipped_z_scores_and_freezes():
    transformer = StateNormalizationTransformer(clip=2.0)
    transformer.setup(gymnasium.spaces.Box(-np.inf, np.inf, (2,)), workers=4)
    batch = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0], [100.0, 10.0]])
    normalized = transformer.transform_state(batch)
    expected = (batch - batch.mean(0)) / np.sqrt(batch.var(0) + 1e-8)
    np.testing.assert_allclose(normalized, np.clip(expected, -2, 2), rtol=1e-5)
    count = transformer.statistics.count
    transformer.transform_state(batch * 5, update=False)
    assert transformer.statistics.count == count


def test_reward_normalization_scales_by_std_of_discounted_return():
    transformer = RewardNormalizationTransformer(discount=0.5)
    transformer.setup(None, workers=1)
    outputs, returns, running = [], [], 0.0
    for reward in [1.0, 1.0, 1.0, 1.0]:
        running = running * 0.5 + reward
        returns.append(running)
        outputs.append(transformer.transform_reward(np.array([reward]), np.array([False]))[0])
    assert outputs[-1] == pytest.approx(1.0 / np.sqrt(np.var(returns) + 1e-8), rel=1e-5)
    # An episode end resets that worker's return.
    transformer.transform_reward(np.array([1.0]), np.array([True]))
    assert transformer.returns[0] == 0.0


def test_resolve_transformer_accepts_classes_instances_names_and_rejects_others():
    assert isinstance(resolve_transformer("state"), StateNormalizationTransformer)
    instance = RewardNormalizationTransformer()
    assert resolve_transformer(instance) is instance
    assert isinstance(resolve_transformer(StateNormalizationTransformer), StateNormalizationTransformer)
    with pytest.raises(ValueError, match="Unknown transformer 'stat'.*reward.*state"):
        resolve_transformer("stat")
    with pytest.raises(TypeError, match="BaseTransformer"):
        resolve_transformer(42)


def test_restart_episodes_forgets_the_running_return_but_not_the_statistics():
    transformer = RewardNormalizationTransformer()
    transformer.setup(None, workers=2)
    transformer.transform_reward(np.array([1.0, 2.0]), np.array([False, False]))
    count = transformer.statistics.count
    transformer.restart_episodes()
    np.testing.assert_array_equal(transformer.returns, [0.0, 0.0])
    assert transformer.statistics.count == count
