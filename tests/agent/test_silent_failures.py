"""Regression tests for failures that used to be silent (issue 9): each ran without an error and
gave a wrong result, or failed far from its cause with an error a learner could not act on."""

import gymnasium
import keras
import numpy as np
import pytest
import tensorflow as tf

from dexterity_nb.agent import objectives
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.gather import Gatherer
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.policies import Categorical, Gaussian
from dexterity_nb.common.transformers import RewardNormalizationTransformer
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

OBSERVATIONS = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)


def small_agent(env="CartPole-v1", transformers=("state",), **options):
    settings = dict(horizon=32, workers=2, seed=0, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn"), make_env(env, transformers=list(transformers)), **settings)


def policy_weights(agent):
    return [np.array(weight) for weight in agent.policy.get_weights()]


def weights_changed(before, after):
    return any(not np.array_equal(b, a) for b, a in zip(before, after))


# ---------------------------------------------------------------- gradient clipping
@pytest.mark.parametrize("limit", [None, 1e38, 3e38])
def test_no_or_huge_gradient_clipping_still_trains_every_weight(limit):
    # It used to stand in for "no limit" with 3e38, and tf.clip_by_global_norm's scale c · (1/c)
    # flushed to zero: every gradient became 0 while the log went on printing losses.
    agent = small_agent(gradient_clipping=limit)
    before = policy_weights(agent)
    agent.drill(1, 2, 32, verbose=False)
    after = policy_weights(agent)
    assert all(not np.array_equal(b, a) for b, a in zip(before, after)), "some policy weights did not move"


def test_clip_by_global_norm_scales_only_above_the_limit():
    gradients = [tf.constant([3.0, 0.0]), tf.constant([[4.0]])]  # global norm 5
    clipped = objectives.clip_by_global_norm(gradients, 1.0)
    assert float(tf.linalg.global_norm(clipped)) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    for no_limit in (0.0, 10.0, 1e38, 3e38):
        unchanged = objectives.clip_by_global_norm(gradients, no_limit)
        np.testing.assert_array_equal(unchanged[0].numpy(), [3.0, 0.0])
        np.testing.assert_array_equal(unchanged[1].numpy(), [[4.0]])
    zeros = objectives.clip_by_global_norm([tf.zeros(3)], 0.5)
    np.testing.assert_array_equal(zeros[0].numpy(), np.zeros(3))


# ---------------------------------------------------------------- the NumPy mirror
def test_act_follows_weights_set_from_outside_the_drill():
    source, target = small_agent(seed=1), small_agent(seed=2)
    source.drill(2, 2, 32, verbose=False)
    target.act(OBSERVATIONS[0])  # the mirror is built and used before the weights change
    target.policy.set_weights(source.policy.get_weights())
    keras_actions = np.argmax(np.asarray(source.policy(OBSERVATIONS)), axis=-1)
    # Identity statistics, so that act sees the observations Keras saw.
    for agent in (source, target):
        agent.transformers[0].statistics.mean[:] = 0.0
        agent.transformers[0].statistics.var[:] = 1.0
    assert [target.act(o, deterministic=True) for o in OBSERVATIONS] == [source.act(o, deterministic=True) for o in OBSERVATIONS]
    assert [target.act(o, deterministic=True) for o in OBSERVATIONS] == keras_actions.tolist()


def test_evaluate_plays_with_weights_copied_in_from_another_agent():
    trained = small_agent(seed=3)
    trained.drill(3, 4, 32, verbose=False)
    fresh = small_agent(seed=3)
    fresh.evaluate(1, max_steps=5)  # the mirror is in use before the copy
    fresh.policy.set_weights(trained.policy.get_weights())
    fresh.evaluate(1, max_steps=5)
    np.testing.assert_allclose(fresh._policy_forward(OBSERVATIONS)[0], np.asarray(trained.policy(OBSERVATIONS)), atol=1e-5)


class RecordingGatherer(Gatherer):
    """Keeps the parameters it was given, to see which weights gathering used."""

    seen = []

    def select_action(self, predicted_parameters):
        RecordingGatherer.seen.append(np.array(predicted_parameters[0]))
        return super().select_action(predicted_parameters)


class ZeroPolicy(Callback):
    """Sets every policy weight to 0 after each cycle: outside the drill's own update."""

    def on_cycle_end(self, agent, stats):
        agent.policy.set_weights([np.zeros_like(weight) for weight in agent.policy.get_weights()])
        RecordingGatherer.seen.clear()


def test_a_cycle_gathers_with_weights_set_by_a_callback():
    agent = small_agent(seed=4)
    agent.assign_gatherer(RecordingGatherer)
    agent.drill(1, 1, 32, callbacks=[ZeroPolicy()], verbose=False)
    agent.drill(1, 1, 32, verbose=False)
    assert len(RecordingGatherer.seen) == 32 * 2
    assert all(np.array_equal(logits, np.zeros((1, 2))) for logits in RecordingGatherer.seen)  # zero weights: zero logits


# ---------------------------------------------------------------- eager debugging
def test_log_probability_keeps_its_gradient_under_an_eager_tape():
    logits = tf.Variable([[0.5, -0.5, 0.0]])
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(Categorical(gymnasium.spaces.Discrete(3)).log_probability(np.array([1]), logits))
    gradient = tape.gradient(loss, logits)
    assert gradient is not None and np.any(gradient.numpy() != 0)
    mean, log_std = tf.Variable([[0.1, 0.2]]), tf.Variable([[0.0, -1.0]])
    gaussian = Gaussian(gymnasium.spaces.Box(-1, 1, (2,), dtype=np.float32))
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(gaussian.log_probability(np.array([[0.3, -0.2]]), mean, log_std)) - tf.reduce_sum(gaussian.entropy(mean, log_std))
    assert all(g is not None for g in tape.gradient(loss, [mean, log_std]))


def test_eager_tensors_outside_a_tape_still_take_the_numpy_path_and_agree():
    logits = tf.constant([[0.5, -0.5, 0.0]])
    result = Categorical(gymnasium.spaces.Discrete(3)).log_probability(tf.constant([1]), logits)
    assert isinstance(result, tf.Tensor)
    np.testing.assert_allclose(result.numpy(), tf.nn.log_softmax(logits).numpy()[:, 1], rtol=1e-6)


def test_the_policy_learns_under_run_functions_eagerly():
    tf.config.run_functions_eagerly(True)
    try:
        agent = small_agent(seed=5)
        before = policy_weights(agent)
        agent.drill(1, 1, 32, verbose=False)
        assert weights_changed(before, policy_weights(agent))
        logits_kernel = before[-2], policy_weights(agent)[-2]
        assert not np.array_equal(*logits_kernel), "the policy head did not learn: its gradient was cut"
    finally:
        tf.config.run_functions_eagerly(False)


class PolicyWithAnUnusedLayer(keras.Model):
    def __init__(self, actions):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.logits = keras.layers.Dense(actions)
        self.forgotten = keras.layers.Dense(3)  # built below but never called: it can never learn
        self.forgotten.build((None, 4))

    def call(self, observations):
        return [self.logits(self.hidden(observations))]


def test_a_weight_the_loss_never_reaches_is_an_error_not_a_silent_zero():
    def build(observation_space, distribution):
        inputs = keras.Input(observation_space.shape)
        value = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(8, activation="tanh")(inputs)))
        return PolicyWithAnUnusedLayer(distribution.n), value

    with pytest.raises(ValueError, match="does not depend on the trainable weights .*never learn"):
        PPOAgent(build, make_env("CartPole-v1"), horizon=16, workers=2, verbose=False)


# ---------------------------------------------------------------- learning-rate schedules
@pytest.mark.parametrize("schedule, message", [
    (lambda progress: -1.0, r"`lr_schedule\(0\)` returned -1.0; it must return a finite factor ≥ 0"),
    (lambda progress: 1e6, r"returned 1000000.0.*at most 10"),
    (lambda progress: float("nan"), "returned nan"),
    (lambda progress: "half", "returned 'half'"),
    (lambda progress: 1.0 if progress < 0.5 else -0.5, r"`lr_schedule\(0.5\)` returned -0.5"),
])
def test_bad_schedule_values_fail_before_any_work(schedule, message):
    agent = small_agent(lr_schedule=schedule)
    before = policy_weights(agent)
    with pytest.raises(ValueError, match=message):
        agent.drill(2, 1, 32, verbose=False)
    assert agent.cycle == 0 and agent.history == [] and not weights_changed(before, policy_weights(agent))


def test_a_good_custom_schedule_sets_every_cycle_rate():
    agent = small_agent(lr_schedule=lambda progress: 0.5 ** (4 * progress))
    agent.drill(2, 1, 32, verbose=False)
    assert [entry["learning_rate"] for entry in agent.history] == pytest.approx([1e-3, 1e-3 * 0.25])
    assert float(agent.optimizer.learning_rate.numpy()) == pytest.approx(2.5e-4)


# ---------------------------------------------------------------- reward normalisation's γ
def test_reward_normalisation_tracks_returns_with_the_agents_discount():
    agent = small_agent(env="Pendulum-v1", transformers=("reward",), discount=0.9)
    assert agent.transformers[0].discount == 0.9
    explicit = small_agent(env="Pendulum-v1", transformers=(RewardNormalizationTransformer(discount=0.99),), discount=0.9)
    assert explicit.transformers[0].discount == 0.99
    assert RewardNormalizationTransformer().config()["discount"] is None  # rebuilt with the loading agent's γ


def test_reward_normalisation_statistics_are_those_of_the_discounted_return():
    transformer = RewardNormalizationTransformer()
    transformer.set_discount(0.5)
    transformer.setup(None, 1)
    for _ in range(4):
        transformer.transform_reward(np.ones(1), np.zeros(1, dtype=bool))
    returns = [1.0, 1.5, 1.75, 1.875]  # G_t = 1 + 0.5 G_{t−1}
    assert transformer.statistics.var == pytest.approx(np.var(returns))


# ---------------------------------------------------------------- errors named before any work
def test_seed_out_of_numpys_range_is_named():
    with pytest.raises(ValueError, match=r"`seed` must be None or an int in \[0, 2\*\*32 − 1\].*got 4294967296"):
        small_agent(seed=2**32)


def test_a_horizon_that_cannot_fit_in_memory_is_named_before_anything_is_built():
    with pytest.raises(ValueError, match=r"`horizon` × `workers` = 10000000000 × 2 .*GiB of memory.*smaller horizon"):
        small_agent(horizon=10**10)


def test_passing_get_model_builder_itself_says_to_call_it():
    with pytest.raises(TypeError, match=r'got get_model_builder itself.*get_model_builder\("simple", "ffn"\)'):
        PPOAgent(get_model_builder, make_env("CartPole-v1"), verbose=False)


def test_callbacks_must_be_a_list_of_instances():
    agent = small_agent()
    with pytest.raises(TypeError, match=r"`callbacks` must be a list; got one Callback: wrap it"):
        agent.drill(1, 1, 32, callbacks=Callback())
    with pytest.raises(TypeError, match=r"got the class Callback: use callbacks=\[Callback\(\)\]"):
        agent.drill(1, 1, 32, callbacks=Callback)
    with pytest.raises(TypeError, match=r"holds the class Callback; pass an instance"):
        agent.drill(1, 1, 32, callbacks=[Callback])
    assert agent.cycle == 0 and agent.history == []


class InterruptedWhileStarting(Callback):
    def __init__(self):
        self.ended = None

    def on_drill_begin(self, agent):
        raise KeyboardInterrupt

    def on_drill_end(self, agent, history):
        self.ended = agent.drill_outcome


def test_ctrl_c_during_on_drill_begin_ends_the_drill_cleanly(capsys):
    agent = small_agent()
    watcher = InterruptedWhileStarting()
    agent.drill(2, 1, 32, callbacks=[watcher], verbose=False)  # no exception escapes
    assert agent.drill_outcome == "interrupted" and watcher.ended == "interrupted"
    assert agent.cycle == 0 and "Drill interrupted" in capsys.readouterr().out


def test_evaluating_an_env_without_a_time_limit_needs_max_steps():
    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env(lambda: gymnasium.make("CartPole-v1").unwrapped),
                     horizon=16, workers=2, seed=0, verbose=False)
    with pytest.raises(ValueError, match=r"has no time limit.*max_steps"):
        agent.evaluate(1)
    result = agent.evaluate(2, max_steps=7)
    assert result.lengths.max() <= 7
    with pytest.raises(ValueError, match="`max_steps` must be a positive int"):
        agent.evaluate(1, max_steps=0)


class BrokenGatherer(Gatherer):
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this gatherer cannot start")


def test_a_failed_assign_gatherer_keeps_the_old_gatherer_everywhere():
    agent = small_agent()
    with pytest.raises(RuntimeError, match="cannot start"):
        agent.assign_gatherer(BrokenGatherer)
    assert agent.gatherer_class is Gatherer
    assert all(type(gatherer) is Gatherer for gatherer in agent.rollout.gatherers)
    agent.drill(1, 1, 32, verbose=False)
    assert agent.cycle == 1


def test_hyperparameters_changed_after_construction_are_checked_at_the_next_drill():
    agent = small_agent()
    agent.clip = -0.2
    with pytest.raises(ValueError, match=r"`agent.clip` must be in \(0.0, 10.0\], got -0.2"):
        agent.drill(1, 1, 32, verbose=False)
    agent.clip, agent.learning_rate = 0.1, "1e-3"
    with pytest.raises(ValueError, match=r"`agent.learning_rate` must be a finite number, got '1e-3'"):
        agent.drill(1, 1, 32, verbose=False)
    assert agent.cycle == 0 and agent.history == []


def test_act_takes_exactly_one_observation():
    agent = small_agent()
    with pytest.raises(ValueError, match=r"act takes one observation of shape \(4,\); got shape \(3, 4\)"):
        agent.act(OBSERVATIONS[:3])
