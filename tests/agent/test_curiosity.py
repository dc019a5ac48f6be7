"""Curiosity (``agent/curiosity.py``): the bonus maths on hand-computed numbers, the two bonuses,
and the agent's use of them: rewards, history, copies, errors, save/load, rollback, reproducibility.

Agents run on MountainCar (a bounded 2-D observation, as counts need) with episodes cut at
``EPISODE_STEPS`` so that some end within a few short cycles.
"""

import json
import math

import gymnasium
import numpy as np
import pytest

from dexterity_nb.agent import curiosity
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.checkpoint import CheckpointError
from dexterity_nb.agent.curiosity import (
    CountBonus,
    IntrinsicReward,
    RandomNetworkDistillation,
    count_bonus,
    discounted_running_sums,
    grid_cells,
    register_intrinsic_reward,
    resolve_intrinsic_reward,
)
from dexterity_nb.agent.objectives import generalized_advantage_estimates
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

EPISODE_STEPS = 40
TIMING_KEYS = ("gather_seconds", "optimize_seconds", "seconds", "steps_per_second")
BOX = gymnasium.spaces.Box(0.0, 1.0, (2,))
ACTIONS = gymnasium.spaces.Discrete(3)


def mountain_car(transformers=()):
    return make_env("MountainCar-v0", transformers=list(transformers), max_episode_steps=EPISODE_STEPS)


def curious_agent(intrinsic="counts", env=None, builder=None, **options):
    settings = dict(horizon=32, workers=2, seed=0, verbose=False)
    settings.update(options)
    builder = builder or get_model_builder("simple", "ffn", hidden_units=(16,))
    return PPOAgent(builder, env or mountain_car(), intrinsic=intrinsic, **settings)


def without_timing(history):
    return [{key: value for key, value in entry.items() if key not in TIMING_KEYS} for entry in history]


def assert_states_equal(first, second):
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def gathered(agent):
    agent._policy_forward_refresh()
    return agent.rollout.gather(agent._policy_forward, agent.horizon)


class Constant(IntrinsicReward):
    """b_t = ``value`` everywhere: r^i is then known by hand."""

    def __init__(self, value=0.5, **options):
        super().__init__(**options)
        self.value = value

    def bonus(self, observations, actions, next_observations):
        return np.full(np.shape(next_observations)[:2], self.value)

    def config(self):
        return {**super().config(), "value": self.value}


class Given(IntrinsicReward):
    """The bonus is whatever array the test sets in ``next_bonus``."""

    def bonus(self, observations, actions, next_observations):
        return self.next_bonus


@pytest.fixture
def registry(monkeypatch):
    """A fresh copy of the intrinsic-reward registry, so that what a test registers stays in that test."""
    monkeypatch.setattr(curiosity, "INTRINSIC_REWARDS", dict(curiosity.INTRINSIC_REWARDS))


# ------------------------------------------------------------------ 1. the maths, by hand
def test_discounted_running_sums_carry_the_previous_sum():
    rewards = [[1.0, 2.0], [3.0, 4.0]]
    # R_0 = 0.5·1 + 1 = 1.5, 0.5·0 + 2 = 2; R_1 = 0.5·1.5 + 3 = 3.75, 0.5·2 + 4 = 5
    np.testing.assert_allclose(discounted_running_sums([1.0, 0.0], rewards, 0.5), [[1.5, 2.0], [3.75, 5.0]])
    np.testing.assert_allclose(discounted_running_sums([7.0, 7.0], rewards, 0.0), rewards)  # γ = 0: no memory
    np.testing.assert_allclose(discounted_running_sums([1.0, -1.0], rewards, 1.0), [[2.0, 1.0], [5.0, 5.0]])  # γ = 1: sums


def test_count_bonus_is_one_over_the_root_of_the_visits():
    np.testing.assert_allclose(count_bonus([0, 1, 4, 100]), [1.0, 1.0, 0.5, 0.1])
    assert count_bonus(np.zeros((3, 2))).shape == (3, 2)


def test_grid_cells_index_each_dimension_by_powers_of_bins():
    low, high, bins = [0.0, 0.0], [1.0, 10.0], 4
    corners = [[0.0, 0.0], [0.99, 0.0], [0.0, 9.99], [1.0, 10.0]]
    assert grid_cells(corners, low, high, bins).tolist() == [0, 3, 12, 15]  # i_0 + 4·i_1
    assert grid_cells([[0.3, 6.0]], low, high, bins).tolist() == [1 + 4 * 2]  # ⌊1.2⌋ = 1, ⌊2.4⌋ = 2
    assert grid_cells([[-5.0, 100.0], [7.0, -1.0]], low, high, bins).tolist() == [0 + 4 * 3, 3 + 0]  # clipped
    assert grid_cells(np.zeros((5, 3, 2)), low, high, bins).shape == (5, 3)


# ------------------------------------------------------------------ 2. IntrinsicReward.rewards
def set_up(reward, workers=2, space=BOX):
    reward.setup(space, ACTIONS, workers)
    return reward


def no_ends(horizon=3, workers=2):
    return np.zeros((horizon, workers), dtype=bool)


def test_rewards_are_the_bonus_times_the_weight():
    reward = set_up(Constant(value=3.0, weight=2.0))
    rewards = reward.rewards(None, None, np.zeros((3, 2, 2)), no_ends())
    assert rewards.dtype == np.float32
    np.testing.assert_array_equal(rewards, np.full((3, 2), 6.0))


def test_normalize_divides_by_the_std_of_all_discounted_sums_so_far():
    reward = set_up(Given(weight=1.5, normalize=True, discount=0.9))
    rng = np.random.default_rng(0)
    first, second = rng.uniform(0, 2, size=(4, 2)), rng.uniform(0, 2, size=(4, 2))
    # R_t = 0.9 R_{t−1} + b_t per worker, carried from the first call into the second
    sums, running = [], np.zeros(2)
    for step in np.concatenate([first, second]):
        running = 0.9 * running + step
        sums.append(running.copy())
    sums = np.array(sums)
    reward.next_bonus = first
    np.testing.assert_allclose(reward.rewards(None, None, None, no_ends(4)), 1.5 * first / np.std(sums[:4]), rtol=1e-5)
    reward.next_bonus = second
    np.testing.assert_allclose(reward.rewards(None, None, None, no_ends(4)), 1.5 * second / np.std(sums), rtol=1e-5)
    assert reward.return_statistics.count == 16
    np.testing.assert_allclose(reward.return_statistics.mean, np.mean(sums))


def test_episode_returns_sum_each_finished_episode_across_calls():
    reward = set_up(Constant(value=1.0))
    ends = no_ends()
    ends[1, 0] = True  # worker 0's episode ends at step 1: Σ r^i = 2
    assert reward.rewards(None, None, np.zeros((3, 2, 2)), ends).shape == (3, 2)
    assert reward.episode_returns == [2.0]
    ends = no_ends()
    ends[0, 1] = True  # worker 1: 3 steps of the first call + 1 of this one
    ends[2, 0] = True  # worker 0: the step left from the first call + 3 of this one
    reward.rewards(None, None, np.zeros((3, 2, 2)), ends)
    assert reward.episode_returns == [4.0, 4.0]
    reward.rewards(None, None, np.zeros((3, 2, 2)), no_ends())
    assert reward.episode_returns == []  # only episodes that ended in the last call
    reward.restart_episodes()
    ends = no_ends()
    ends[0, 0] = ends[0, 1] = True
    reward.rewards(None, None, np.zeros((3, 2, 2)), ends)
    assert reward.episode_returns == [1.0, 1.0]  # the sums before the restart are forgotten


@pytest.mark.parametrize("bonus, detail", [
    (np.ones((2, 2)), r"shape \(2, 2\)"),
    (np.ones((3, 2, 1)), r"shape \(3, 2, 1\)"),
    (np.array([[1.0, np.nan]] * 3), "NaN or infinite"),
    (np.array([[1.0, np.inf]] * 3), "NaN or infinite"),
])
def test_a_bonus_of_the_wrong_shape_or_not_finite_is_named(bonus, detail):
    reward = set_up(Given())
    reward.next_bonus = bonus
    with pytest.raises(ValueError, match=rf"Given\.bonus.*\(3, 2\).*{detail}"):
        reward.rewards(None, None, None, no_ends())


@pytest.mark.parametrize("options, error, message", [
    (dict(weight=-1.0), ValueError, "weight"),
    (dict(weight=math.inf), ValueError, "weight"),
    (dict(discount=1.5), ValueError, "discount"),
    (dict(episodic="yes"), TypeError, "episodic"),
    (dict(bins=0), ValueError, "bins"),
])
def test_bad_count_bonus_arguments_are_named(options, error, message):
    with pytest.raises(error, match=message):
        CountBonus(**options)


# ------------------------------------------------------------------ 3. CountBonus
def test_count_bonus_pays_the_weight_for_new_cells_and_counts_only_when_trained():
    counts = set_up(CountBonus(bins=4, weight=0.5), workers=2)
    states = np.full((2, 2, 2), 0.1)  # four visits to cell 0
    states[0, 0] = [0.9, 0.9]  # one to cell 3 + 4·3 = 15; cell 0 then gets three
    np.testing.assert_array_equal(counts.bonus(None, None, states), np.ones((2, 2)))  # 1/√max(0, 1)
    np.testing.assert_array_equal(counts.rewards(None, None, states, no_ends(2)), np.full((2, 2), 0.5))
    assert counts.counts.sum() == 0  # taking the bonus learns nothing
    assert counts.train(None, None, states) == {"cells_visited": 2}
    assert counts.counts[0] == 3 and counts.counts[15] == 1 and counts.counts.sum() == 4
    np.testing.assert_allclose(counts.bonus(None, None, np.full((1, 1, 2), 0.1)), [[1 / np.sqrt(3)]])
    counts.train(None, None, np.full((1, 1, 2), 0.1))
    np.testing.assert_allclose(counts.rewards(None, None, np.full((1, 2, 2), 0.1), no_ends(1)), [[0.5 * 0.5] * 2])  # N = 4


def test_count_bonus_needs_finite_bounds_and_a_flat_observation():
    cartpole = gymnasium.make("CartPole-v1").observation_space  # velocities are unbounded
    with pytest.raises(ValueError, match=r"finite bounds.*low=\[\.\.\.\], high=\[\.\.\.\]"):
        set_up(CountBonus(), space=cartpole)
    set_up(CountBonus(low=[-2.4, -3, -0.2, -3], high=[2.4, 3, 0.2, 3]), space=cartpole)  # given bounds work
    with pytest.raises(ValueError, match=r"finite bounds"):
        set_up(CountBonus(low=[0.0], high=[1.0]))  # one bound for two dimensions
    with pytest.raises(ValueError, match=r"low < high"):
        set_up(CountBonus(low=[0.0, 1.0], high=[1.0, 1.0]))
    with pytest.raises(ValueError, match=r"flat observation vector"):
        set_up(CountBonus(), space=gymnasium.spaces.Box(0.0, 1.0, (2, 2)))
    with pytest.raises(ValueError, match=r"flat observation vector"):
        set_up(CountBonus(), space=gymnasium.spaces.Discrete(4))
    with pytest.raises(ValueError, match=r"too large"):
        set_up(CountBonus(bins=100), space=gymnasium.spaces.Box(0.0, 1.0, (4,)))


def test_count_grid_bounds_fit_the_observations_it_is_given():
    """With a state normaliser, the bonus sees normalised observations: raw bounds would not fit them.

    MountainCar starts at rest and its velocity stays far inside ±0.07 for the first tens of
    steps, so none of the counted cells may lie on the grid's edge rows of velocity. Refusing
    the combination with a clear ValueError would also satisfy this test.
    """
    try:
        agent = curious_agent(CountBonus(bins=20), env=mountain_car(["state"]))
    except ValueError as error:
        assert "low" in str(error) and "high" in str(error)
        return
    agent.drill(1, epochs=1, batch_size=64, verbose=False)
    velocity_rows = set((np.nonzero(agent.intrinsic.counts)[0] // 20).tolist())
    assert agent.intrinsic.counts.sum() == 64
    assert velocity_rows <= set(range(1, 19)), (
        f"counted cells lie on the velocity edges {sorted(velocity_rows)}: the grid has MountainCar's raw bounds "
        "but counts normalised observations")


# ------------------------------------------------------------------ 4. RND
def test_rnd_bonus_falls_where_it_trained_and_stays_high_elsewhere():
    from dexterity_nb.common.quiet_import import keras

    keras.utils.set_random_seed(0)
    rnd = set_up(RandomNetworkDistillation(batch_size=64, epochs=1, learning_rate=3e-3), workers=4,
                 space=gymnasium.spaces.Box(-1, 1, (2,)))
    rng = np.random.default_rng(0)
    rnd.update_statistics(None, None, rng.uniform(-1, 1, size=(256, 4, 2)))  # normalise over the whole box

    def region(centre, horizon=16):
        return (np.asarray(centre) + 0.05 * rng.normal(size=(horizon, 4, 2))).astype(np.float32)

    trained, unseen = region([0.6, 0.6]), region([-0.6, -0.6])
    before = rnd.bonus(None, None, trained).mean()
    unseen_before = rnd.bonus(None, None, unseen).mean()
    assert rnd.bonus(None, None, trained).shape == (16, 4)
    weights = [np.array(weight) for weight in rnd.predictor.weights]
    rnd.bonus(None, None, trained)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(weights, rnd.predictor.weights))  # bonus does not learn
    target = [np.array(weight) for weight in rnd.target.weights]
    losses = [rnd.train(None, None, region([0.6, 0.6], 64))["predictor_loss"] for _ in range(80)]
    after, unseen_after = rnd.bonus(None, None, trained).mean(), rnd.bonus(None, None, unseen).mean()
    assert after < before / 20, (before, after)
    assert unseen_after > 20 * after, (unseen_after, after)
    assert unseen_after > unseen_before / 3
    assert losses[-1] < losses[0]
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(target, rnd.target.weights))  # the target never learns
    rnd.bonus(None, None, region([0.0, 0.0], 3))
    rnd.train(None, None, region([0.0, 0.0], 5))  # 20 states: one smaller batch
    # Compiled once each: other horizons and batch sizes do not retrace.
    assert [function.experimental_get_tracing_count() for function in (rnd._errors, rnd._step)] == [1, 1]


def test_registering_works_as_a_decorator_and_checks_the_class_and_the_name(registry):
    @register_intrinsic_reward
    class Plain(Constant):
        pass

    @register_intrinsic_reward(name="named")
    class Named(Constant):
        pass

    assert curiosity.INTRINSIC_REWARDS["Plain"] is Plain and curiosity.INTRINSIC_REWARDS["named"] is Named
    assert isinstance(resolve_intrinsic_reward("named"), Named)
    with pytest.raises(TypeError, match="subclasses of IntrinsicReward"):
        register_intrinsic_reward(dict)
    with pytest.raises(TypeError, match="subclasses of IntrinsicReward"):
        register_intrinsic_reward(Constant())
    with pytest.raises(ValueError, match=r"'counts' is already taken.*overwrite=True"):
        register_intrinsic_reward(Named, name="counts")
    assert curiosity.INTRINSIC_REWARDS["counts"] is CountBonus


# ------------------------------------------------------------------ 5. in the agent
@pytest.fixture(scope="module")
def drilled():
    """One plain, one counting and one RND agent, each drilled 3 cycles of 32 × 2 steps."""
    agents = {name: curious_agent(name) for name in (None, "counts", "rnd")}
    for agent in agents.values():
        agent.drill(3, epochs=2, batch_size=32, verbose=False)
    return agents


def test_history_reports_the_task_return_and_intrinsic_metrics_only_with_curiosity(drilled):
    plain, counts, rnd = drilled[None], drilled["counts"], drilled["rnd"]
    assert not [key for entry in plain.history for key in entry if key.startswith("intrinsic")]
    for agent, metrics in ((counts, {"intrinsic_cells_visited"}), (rnd, {"intrinsic_predictor_loss", "intrinsic_value_loss"})):
        for entry in agent.history:
            assert {key for key in entry if key.startswith("intrinsic")} == {"intrinsic_return"} | metrics
            assert all(math.isfinite(entry[key]) for key in metrics)
        # 96 steps per worker: episodes of 40 end at steps 40 and 80, i.e. in cycles 2 and 3.
        assert [entry["episodes"] for entry in agent.history] == [0, 2, 2]
        assert math.isnan(agent.history[0]["intrinsic_return"])
        for entry in agent.history[1:]:
            # The task's own rewards, −1 a step: the bonus is not in the returns shown.
            assert entry["episode_returns"] == [-float(EPISODE_STEPS)] * 2 == [-float(n) for n in entry["episode_lengths"]]
            assert entry["mean_return"] == -EPISODE_STEPS
            assert entry["intrinsic_return"] > 0
    # Every step is counted once: 3 cycles × 32 steps × 2 workers.
    assert counts.intrinsic.counts.sum() == 192 and counts.history[-1]["intrinsic_cells_visited"] == np.count_nonzero(
        counts.intrinsic.counts)
    assert counts.history[-1]["intrinsic_return"] <= EPISODE_STEPS  # at most 1 a step
    assert rnd.intrinsic.observation_statistics.count == 192
    assert counts.intrinsic_critic is None and rnd.intrinsic_critic is not None


def test_intrinsic_return_is_the_mean_of_the_finished_episodes_sums():
    recorded = []

    class Recorder(Callback):
        def on_cycle_end(self, agent, stats):
            recorded.append(list(agent.intrinsic.episode_returns))

    agent = curious_agent(Constant(value=0.25))
    agent.drill(3, epochs=1, batch_size=64, callbacks=[Recorder()], verbose=False)
    assert recorded[1:] == [[0.25 * EPISODE_STEPS] * 2] * 2
    assert agent.history[-1]["intrinsic_return"] == 0.25 * EPISODE_STEPS


@pytest.mark.parametrize("episodic", [True, False])
def test_an_episodic_bonus_joins_the_reward_gae_sees_and_a_non_episodic_one_gets_v_i(episodic, monkeypatch):
    agent = curious_agent(Constant(value=0.5, weight=2.0, episodic=episodic))
    assert (agent.intrinsic_critic is None) == episodic
    seen = []
    original = agent._advantages

    def recording(trajectories, bonus=None):
        seen.append(bonus)
        return original(trajectories, bonus)

    monkeypatch.setattr(agent, "_advantages", recording)
    agent.drill(1, epochs=1, batch_size=64, verbose=False)
    if episodic:
        np.testing.assert_array_equal(seen[0], np.full((32, 2), 1.0))  # β · b = 2 · 0.5
    else:
        assert seen == [None]  # the task's advantages stay the task's; A^i comes from V_i
        assert math.isfinite(agent.history[-1]["intrinsic_value_loss"])


def test_the_episodic_bonus_changes_advantages_exactly_as_gae_on_r_plus_bonus():
    agent = curious_agent(Constant(value=0.5))
    trajectories = gathered(agent)
    trajectories.episode_ends[10, 0] = trajectories.terminated[10, 0] = True  # one terminal inside, for the cut
    bonus = np.full(trajectories.rewards.shape, 0.5, dtype=np.float32)
    values, advantages, returns = agent._advantages(trajectories)
    same_values, bonus_advantages, bonus_returns = agent._advantages(trajectories, bonus)
    np.testing.assert_array_equal(values, same_values)
    # GAE is linear in the rewards; with V = 0 the bonus's own part is hand-solvable:
    # A_t = Σ_k (γλ)^k · 0.5 up to the episode's end.
    extra, _ = generalized_advantage_estimates(bonus, np.zeros_like(values), np.zeros_like(values),
                                               trajectories.terminated, trajectories.episode_ends, agent.discount, agent.lam)
    decay = agent.discount * agent.lam
    assert extra[10, 0] == pytest.approx(0.5)  # the terminal step: nothing after it
    assert extra[0, 0] == pytest.approx(0.5 * (1 - decay**11) / (1 - decay))
    np.testing.assert_allclose(bonus_advantages - advantages, extra, atol=1e-5)
    np.testing.assert_allclose(bonus_returns - returns, extra, atol=1e-5)


def test_the_agent_copies_the_instance_it_is_given_and_refuses_one_in_use():
    given = CountBonus(bins=5, weight=0.3)
    first = curious_agent(given)
    first.drill(1, epochs=1, batch_size=64, verbose=False)
    assert first.intrinsic is not given and first.intrinsic.counts.sum() == 64
    assert given.workers == 0 and not hasattr(given, "counts")  # the caller's instance is untouched
    second = curious_agent(given)
    assert second.intrinsic.counts.sum() == 0 and second.intrinsic.weight == 0.3
    with pytest.raises(ValueError, match=r"already belongs to an agent.*new instance"):
        curious_agent(first.intrinsic)


def test_names_and_classes_resolve_and_bad_ones_fail_before_anything_is_built():
    made = []

    def env_factory():
        made.append(True)
        return gymnasium.make("MountainCar-v0")

    with pytest.raises(ValueError, match=r"Unknown intrinsic reward 'nonsense'.*'counts', 'rnd'"):
        curious_agent("nonsense", env=env_factory)
    for wrong in (3, dict, IntrinsicReward.bonus, [CountBonus()]):
        with pytest.raises(TypeError, match=r"`intrinsic` must be None, a name"):
            curious_agent(wrong, env=env_factory)
    assert not made  # the env was never made: the intrinsic argument is checked first
    assert isinstance(resolve_intrinsic_reward("rnd"), RandomNetworkDistillation)
    assert resolve_intrinsic_reward(CountBonus, weight=0.2).weight == 0.2
    assert resolve_intrinsic_reward(None) is None
    with pytest.raises(ValueError, match="not both"):
        resolve_intrinsic_reward(CountBonus(), weight=0.2)
    with pytest.raises(ValueError, match="without `intrinsic`"):
        resolve_intrinsic_reward(None, weight=0.2)


def test_count_bonus_on_an_unbounded_env_fails_with_the_fix():
    with pytest.raises(ValueError, match=r"finite bounds.*Pass CountBonus\(low=\[\.\.\.\], high=\[\.\.\.\]\)"):
        curious_agent("counts", env=make_env("CartPole-v1"))


# ------------------------------------------------------------------ save and load
def saved_and_loaded(agent, tmp_path, **options):
    path = agent.save(tmp_path / "agent.npz")
    return path, PPOAgent.load(path, **options)


@pytest.mark.parametrize("name", ["counts", "rnd"])
def test_save_and_load_keep_the_bonus_state_exactly(drilled, tmp_path, name):
    agent = drilled[name]
    path, loaded = saved_and_loaded(agent, tmp_path)
    assert type(loaded.intrinsic) is type(agent.intrinsic) and loaded.intrinsic.config() == agent.intrinsic.config()
    state = agent._intrinsic_state()
    assert_states_equal(loaded._intrinsic_state(), state)
    expected = {"counts": ["reward/counts", "reward/statistics/return/count"],
                "rnd": ["reward/predictor/0", "reward/target/0", "reward/optimizer/0", "value/critic/0",
                        "value/critic_optimizer/0", "reward/statistics/observation/mean"]}[name]
    assert set(expected) <= set(state)
    observations = np.random.default_rng(1).uniform([-1.2, -0.07], [0.6, 0.07], size=(5, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.intrinsic.bonus(None, None, observations),
                                  agent.intrinsic.bonus(None, None, observations))
    if name == "rnd":
        np.testing.assert_array_equal(loaded.intrinsic_critic.values(observations), agent.intrinsic_critic.values(observations))
    assert (loaded.intrinsic_critic is None) == (agent.intrinsic_critic is None)
    loaded.drill(1, epochs=1, batch_size=64, verbose=False)  # and it drills on
    assert loaded.history[-1]["cycle"] == 4 and "intrinsic_return" in loaded.history[-1]


def rewrite(path, out, change_description=None, change_arrays=None):
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    description = json.loads(str(arrays.pop("description")))
    if change_description is not None:
        change_description(description)
    if change_arrays is not None:
        change_arrays(arrays)
    np.savez(out, description=np.array(json.dumps(description)), **arrays)
    return out


def set_array(name, value):
    def change(arrays):
        arrays[name] = np.asarray(value)
    return change


@pytest.mark.parametrize("name, change, message", [
    ("counts", set_array("intrinsic/reward/counts", np.zeros(7, dtype=np.int64)), r"intrinsic/reward/counts has shape \(7,\)"),
    ("counts", lambda arrays: arrays.pop("intrinsic/reward/counts"), r"intrinsic reward's arrays"),
    ("counts", set_array("intrinsic/reward/extra", np.zeros(3)), r"intrinsic reward's arrays"),
    ("counts", set_array("intrinsic/reward/statistics/return/mean", np.array(np.nan)),
     r"intrinsic/reward/statistics/return/mean.*NaN"),
    ("counts", set_array("intrinsic/reward/counts", np.array(["a"] * 400)), r"intrinsic/reward/counts.*numbers"),
    ("counts", set_array("intrinsic/reward/counts", np.full(400, -3.7)), r"counts must be whole numbers ≥ 0"),
    ("counts", set_array("intrinsic/reward/counts", np.full(400, -3, dtype=np.int64)), r"counts must be whole numbers ≥ 0"),
    ("rnd", set_array("intrinsic/reward/predictor/0", np.zeros((3, 64), dtype=np.float32)),
     r"intrinsic/reward/predictor/0 has shape"),
    ("rnd", set_array("intrinsic/value/critic/0", np.zeros((2, 5), dtype=np.float32)), r"intrinsic/value/critic/0 has shape"),
    ("rnd", lambda arrays: arrays.pop("intrinsic/value/critic_optimizer/0"), r"intrinsic reward's arrays"),
])
def test_damaged_intrinsic_arrays_are_named(drilled, tmp_path, name, change, message):
    path = drilled[name].save(tmp_path / "agent.npz")
    damaged = rewrite(path, tmp_path / "damaged.npz", change_arrays=change)
    with pytest.raises(CheckpointError, match=message):
        PPOAgent.load(damaged)


@pytest.mark.parametrize("name, value", [("return/var", np.array(-1.0)), ("return/count", np.array(-64.0)),
                                         ("observation/var", np.array([0.1, -0.1]))])
def test_impossible_intrinsic_statistics_are_refused_like_a_transformer_s(drilled, tmp_path, name, value):
    """Loaded unchecked, a negative variance makes σ_R NaN (the next cycle fails with a NonFiniteLossError
    that blames the learning rate), a negative count a ZeroDivisionError in the next merge."""
    path = drilled["rnd"].save(tmp_path / "agent.npz")
    damaged = rewrite(path, tmp_path / "damaged.npz", change_arrays=set_array(f"intrinsic/reward/statistics/{name}", value))
    with pytest.raises(CheckpointError, match=f"intrinsic/reward/statistics/{name.split('/')[0]}"):
        PPOAgent.load(damaged)


def test_a_mismatched_config_or_an_intrinsic_agent_without_its_description_is_refused(drilled, tmp_path):
    path = drilled["counts"].save(tmp_path / "agent.npz")

    def other_grid(description):
        description["intrinsic"]["config"]["bins"] = 5

    with pytest.raises(CheckpointError, match=r"intrinsic/reward/counts has shape \(400,\).*\(25,\)"):
        PPOAgent.load(rewrite(path, tmp_path / "grid.npz", change_description=other_grid))

    def refused(description):
        description["intrinsic"]["config"]["bins"] = 0

    with pytest.raises(CheckpointError, match=r"refuses its saved config.*bins"):
        PPOAgent.load(rewrite(path, tmp_path / "refused.npz", change_description=refused))
    with pytest.raises(CheckpointError, match=r"intrinsic/reward/.*is an array no saved agent holds"):
        PPOAgent.load(rewrite(path, tmp_path / "none.npz", change_description=lambda description: description.pop("intrinsic")))


@pytest.mark.parametrize("value, message", [
    (None, r"`intrinsic` must be a dict, got None"),
    ("counts", r"`intrinsic` must be a dict"),
    ({"class": 3, "config": {}}, r"`intrinsic.class` must be a registered name"),
    ({"class": "counts", "config": []}, r"`intrinsic.config` must be a dict"),
    ({"class": "counts"}, r"`intrinsic` must hold exactly the keys.*missing \['config'\]"),
    ({"class": "counts", "config": {}, "code": "import os"}, r"unexpected \['code'\]"),
    ({"class": "counts", "config": {"colour": 1}}, r"'counts' refuses its saved config.*colour"),
    ({"class": "counts", "config": {"low": "ab"}}, r"'counts' refuses its saved config"),
    ({"class": "counts", "config": {"low": [0, 0, 0]}}, r"no agent can be built.*finite bounds"),
])
def test_a_damaged_intrinsic_description_is_named(drilled, tmp_path, value, message):
    path = drilled["counts"].save(tmp_path / "agent.npz")

    def change(description):
        description["intrinsic"] = value

    with pytest.raises(CheckpointError, match=message):
        PPOAgent.load(rewrite(path, tmp_path / "damaged.npz", change_description=change))


class Novelty(CountBonus):
    """A custom bonus: counts on a 5-bin grid, half weight."""

    def __init__(self, **options):
        super().__init__(**{"bins": 5, "weight": 0.5, **options})


def test_an_unregistered_bonus_saves_by_name_and_loading_asks_to_register_it(registry, tmp_path):
    agent = curious_agent(Novelty())
    agent.drill(1, epochs=1, batch_size=64, verbose=False)
    path = agent.save(tmp_path / "agent.npz")
    with np.load(path) as archive:
        assert json.loads(str(archive["description"]))["intrinsic"]["class"] == "Novelty"
    with pytest.raises(CheckpointError,
                       match=r"intrinsic reward 'Novelty'.*not registered.*register_intrinsic_reward\(Novelty\)"):
        PPOAgent.load(path)
    register_intrinsic_reward(Novelty)
    loaded = PPOAgent.load(path)
    assert type(loaded.intrinsic) is Novelty and loaded.intrinsic.config() == agent.intrinsic.config()
    assert_states_equal(loaded._intrinsic_state(), agent._intrinsic_state())


def test_a_registered_name_works_in_the_constructor_and_round_trips(registry, tmp_path):
    register_intrinsic_reward(Constant, name="constant")
    agent = curious_agent("constant")
    assert isinstance(agent.intrinsic, Constant)
    agent.drill(2, epochs=1, batch_size=64, verbose=False)
    _, loaded = saved_and_loaded(agent, tmp_path)
    assert type(loaded.intrinsic) is Constant and loaded.intrinsic.config() == agent.intrinsic.config()
    assert json.dumps(loaded.history) == json.dumps(agent.history)  # (NaN ≠ NaN as floats)


def test_saving_refuses_an_unregistered_bonus_that_shadows_a_registered_name(registry, tmp_path):
    register_intrinsic_reward(Constant, name="Novelty")
    agent = curious_agent(Novelty())
    with pytest.raises(CheckpointError, match=r"Novelty.*not registered.*register_intrinsic_reward"):
        agent.save(tmp_path / "agent.npz")


# ------------------------------------------------------------------ rollback
class StateAtCycleEnd(Callback):
    def __init__(self):
        self.states = []

    def on_cycle_end(self, agent, stats):
        self.states.append(agent._intrinsic_state())


class InterruptedCounts(CountBonus):
    """Counts, then raises KeyboardInterrupt in its second ``train`` (after its bonus was taken and counted)."""

    calls = 0

    def train(self, observations, actions, next_observations):
        metrics = super().train(observations, actions, next_observations)
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return metrics


def test_an_interrupt_after_the_bonus_leaves_the_counts_as_after_the_last_cycle():
    agent = curious_agent(InterruptedCounts(normalize=True))
    watcher = StateAtCycleEnd()
    agent.drill(3, epochs=1, batch_size=64, callbacks=[watcher], verbose=False)
    assert agent.drill_outcome == "interrupted" and agent.cycle == 1 and len(watcher.states) == 1
    assert agent.intrinsic.calls == 2  # it did count the second cycle before the interrupt
    assert agent.intrinsic.counts.sum() == 64
    assert agent.intrinsic.return_statistics.count == 64
    assert_states_equal(agent._intrinsic_state(), watcher.states[0])
    agent.drill(1, epochs=1, batch_size=64, verbose=False)  # and drills on from there
    assert agent.cycle == 2 and agent.intrinsic.counts.sum() == 128


def test_an_interrupt_after_v_i_trained_leaves_rnd_and_v_i_as_after_the_last_cycle(monkeypatch):
    agent = curious_agent("rnd")
    original, calls = agent.intrinsic_critic.train, []

    def interrupted(*arguments):
        loss = original(*arguments)  # V_i trains, after the predictor did
        calls.append(loss)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return loss

    monkeypatch.setattr(agent.intrinsic_critic, "train", interrupted)
    watcher = StateAtCycleEnd()
    agent.drill(3, epochs=1, batch_size=64, callbacks=[watcher], verbose=False)
    assert agent.drill_outcome == "interrupted" and agent.cycle == 1 and len(calls) == 2
    changed = agent._intrinsic_state()
    assert_states_equal(changed, watcher.states[0])
    assert agent.intrinsic.observation_statistics.count == 64 and agent.intrinsic.return_statistics.count == 64


def test_an_interrupt_in_on_gather_end_leaves_the_bonus_untouched():
    class Interrupt(Callback):
        def on_gather_end(self, agent):
            if agent.cycle == 1:
                raise KeyboardInterrupt

    agent = curious_agent("counts")
    watcher = StateAtCycleEnd()
    agent.drill(2, epochs=1, batch_size=64, callbacks=[watcher, Interrupt()], verbose=False)
    assert agent.drill_outcome == "interrupted" and agent.cycle == 1
    assert_states_equal(agent._intrinsic_state(), watcher.states[0])


# ------------------------------------------------------------------ reproducibility and recurrent agents
def test_two_seeded_rnd_agents_drill_identically():
    histories, states = [], []
    for _ in range(2):
        agent = curious_agent("rnd", seed=7)
        agent.drill(3, epochs=2, batch_size=32, verbose=False)
        histories.append(without_timing(agent.history))
        states.append(agent._intrinsic_state())
    assert histories[0] == histories[1]
    assert histories[0][-1]["intrinsic_return"] > 0
    assert_states_equal(*states)


@pytest.mark.parametrize("name", ["counts", "rnd"])
def test_a_recurrent_agent_drills_with_curiosity(name, tmp_path):
    builder = get_model_builder("simple", "gru", hidden_units=(8,), recurrent_units=8)
    agent = curious_agent(name, builder=builder, horizon=24, chunk_length=8, seed=3)
    agent.drill(2, epochs=1, batch_size=16, verbose=False)
    assert [entry["cycle"] for entry in agent.history] == [1, 2]
    assert "intrinsic_return" in agent.history[-1]
    if name == "counts":
        assert agent.intrinsic.counts.sum() == 2 * 24 * 2
    else:
        assert math.isfinite(agent.history[-1]["intrinsic_value_loss"])
        assert agent.intrinsic_critic.values(np.zeros((3, 2, 2), dtype=np.float32)).shape == (3, 2)
    _, loaded = saved_and_loaded(agent, tmp_path)
    assert_states_equal(loaded._intrinsic_state(), agent._intrinsic_state())


def test_the_agent_says_it_is_curious():
    assert "curiosity CountBonus(weight=0.5" in repr(curious_agent(CountBonus(weight=0.5)))
    assert "curiosity" not in repr(curious_agent(None))


def test_a_recurrent_agents_v_i_trains_on_minibatches_of_steps_not_chunks(monkeypatch):
    """A recurrent update counts minibatches in chunks of chunk_length steps; V_i sees single states."""
    sizes = []
    train = curiosity.IntrinsicCritic.train

    def recording(self, observations, returns, epochs, batch_size, learning_rate, rng):
        sizes.append(batch_size)
        return train(self, observations, returns, epochs, batch_size, learning_rate, rng)

    monkeypatch.setattr(curiosity.IntrinsicCritic, "train", recording)
    agent = curious_agent("rnd", builder=get_model_builder("simple", "gru", hidden_units=(16,), recurrent_units=8),
                          chunk_length=16)
    agent.drill(1, 1, 64, verbose=False)
    assert sizes == [64]


class Tally(IntrinsicReward):
    """A learner's bonus: a table of its own (a public array attribute), no get_state of its own."""

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        self.visits = np.zeros(8)
        self.calls = 0

    def bonus(self, observations, actions, next_observations):
        return np.full(np.shape(next_observations)[:2], 1.0 / (1.0 + self.visits.sum()))

    def train(self, observations, actions, next_observations):
        self.visits[self.calls % 8] += np.shape(next_observations)[0]
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return {}


def test_a_learners_array_attributes_are_undone_by_an_interrupt_and_saved(registry, tmp_path):
    agent = curious_agent(Tally())
    agent.drill(3, epochs=1, batch_size=64, verbose=False)
    assert agent.drill_outcome == "interrupted" and agent.cycle == 1
    np.testing.assert_array_equal(agent.intrinsic.visits, [32, 0, 0, 0, 0, 0, 0, 0])  # the second cycle's count undone
    register_intrinsic_reward(Tally)
    loaded = PPOAgent.load(agent.save(tmp_path / "tally.npz"))
    np.testing.assert_array_equal(loaded.intrinsic.visits, agent.intrinsic.visits)
