"""Agents of one architecture share their traced functions (``agent/update.py``), and nothing else.

A second agent of the same architecture is built without tracing; each agent keeps its own
weights, optimizer state and settings, so drills interleaved between agents give exactly what
each agent gives alone; the template that hosts the shared functions draws no random numbers a
seeded agent would have drawn.
"""

import numpy as np
import pytest

from dexterity_nb.agent import update
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder

TIMING_KEYS = ("gather_seconds", "optimize_seconds", "seconds", "steps_per_second")


def agent(seed, hidden=(24,), **options):
    settings = dict(horizon=32, workers=2, seed=seed, verbose=False)
    settings.update(options)
    return PPOAgent(get_model_builder("simple", "ffn", hidden_units=hidden), make_env("CartPole-v1"), **settings)


def without_timing(history):
    return [{key: value for key, value in entry.items() if key not in TIMING_KEYS} for entry in history]


def test_a_second_agent_of_an_architecture_reuses_the_traced_functions_and_a_new_one_does_not():
    first, second = agent(0, hidden=(23,)), agent(1, hidden=(23,))
    assert second._compiled is first._compiled and first.trace_count == second.trace_count == 1
    assert first._compiled.host is not first and first._compiled.host is not second  # a template owned by neither
    other = agent(0, hidden=(22,))  # other layer sizes: other graphs
    assert other._compiled is not first._compiled and other.trace_count == 1
    first.drill(1, 1, 32, verbose=False)
    second.drill(1, 1, 32, verbose=False)
    assert first.trace_count == 1


def test_interleaved_drills_give_what_each_agent_gives_alone():
    alone = agent(5, clip=0.1, learning_rate=3e-3)
    alone.drill(3, 2, 32, verbose=False)

    interleaved, other = agent(5, clip=0.1, learning_rate=3e-3), agent(6, clip=0.3, learning_rate=1e-4, c_entropy=0.0)
    for _ in range(3):
        interleaved.drill(1, 2, 32, verbose=False)
        other.drill(1, 2, 32, verbose=False)  # other weights, optimizer state and settings in the same functions
    assert without_timing(interleaved.history) == without_timing(alone.history)
    for mine, theirs in zip(interleaved.policy.get_weights() + interleaved.value.get_weights(),
                            alone.policy.get_weights() + alone.value.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert float(interleaved._graph_settings["clip"].numpy()) == pytest.approx(0.1)
    assert float(other._graph_settings["clip"].numpy()) == pytest.approx(0.3)


def test_the_template_draws_no_random_numbers_a_seeded_agent_uses():
    """The first agent of an architecture builds the template; a later one does not. Same seed, same agent."""
    first = agent(3, hidden=(21, 21), intrinsic="rnd")  # the template is built inside this constructor
    second = agent(3, hidden=(21, 21), intrinsic="rnd")
    assert second._compiled is first._compiled
    for name, value in first._intrinsic_state().items():  # RND's random target and predictor, V_i
        np.testing.assert_array_equal(value, second._intrinsic_state()[name], err_msg=name)
    for mine, theirs in zip(first.policy.get_weights(), second.policy.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_an_interrupted_cycle_is_undone_from_the_shared_backup():
    trained, other = agent(7), agent(8)
    trained.drill(1, 1, 32, verbose=False)
    weights = [w.copy() for w in trained.policy.get_weights()]

    original = trained._optimize

    def interrupted(*arguments):
        original(*arguments)  # the update ran (the weights changed), then Ctrl-C
        raise KeyboardInterrupt

    trained._optimize = interrupted
    trained.drill(1, 1, 32, verbose=False)
    assert trained.drill_outcome == "interrupted" and trained.cycle == 1
    for mine, before in zip(trained.policy.get_weights(), weights):
        np.testing.assert_array_equal(mine, before)
    other.drill(1, 1, 32, verbose=False)  # the other agent is unaffected and trains on


def test_each_agent_undoes_its_cycle_from_its_own_backup_whoever_used_the_functions_since():
    first, second = agent(9), agent(10)
    first.drill(1, 1, 32, verbose=False)
    second.drill(1, 1, 32, verbose=False)
    before = [w.copy() for w in first.policy.get_weights()]
    first._advantages(first.rollout.gather(first._policy_forward, first.horizon))  # first backs up ...
    second._advantages(second.rollout.gather(second._policy_forward, second.horizon))  # ... then second does
    first.policy.set_weights([w + 1.0 for w in before])  # first's weights change (as an update would)
    first._restore_weights()
    for mine, then in zip(first.policy.get_weights(), before):
        np.testing.assert_array_equal(mine, then)


def test_agents_drilled_from_two_threads_give_what_each_gives_alone():
    import threading

    alone = [agent(seed) for seed in (11, 12)]
    for each in alone:
        each.drill(4, 2, 32, verbose=False)
    together = [agent(seed) for seed in (11, 12)]
    threads = [threading.Thread(target=each.drill, args=(4, 2, 32), kwargs={"verbose": False}) for each in together]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for mine, theirs in zip(together, alone):
        assert without_timing(mine.history) == without_timing(theirs.history)


def test_an_agent_without_a_named_architecture_gets_functions_of_its_own():
    builder = get_model_builder("simple", "ffn", hidden_units=(20,))

    def unnamed(observation_space, distribution):  # a plain function: no config() to name its networks by
        return builder(observation_space, distribution)

    first = PPOAgent(unnamed, make_env("CartPole-v1"), horizon=32, workers=2, seed=0, verbose=False)
    second = PPOAgent(unnamed, make_env("CartPole-v1"), horizon=32, workers=2, seed=0, verbose=False)
    assert first._compiled.host is first and second._compiled.host is second
    assert update._architecture_key(first) is None
    first.drill(1, 1, 32, verbose=False)
    second.drill(1, 1, 32, verbose=False)
    assert without_timing(first.history) == without_timing(second.history)


def test_a_builder_registered_again_under_its_name_builds_other_graphs():
    """A notebook cell that registers an edited builder under the same name must not reuse the old graphs."""
    from dexterity_nb.models import MODEL_BUILDERS, build_feed_forward, register_model_builder

    try:
        @register_model_builder("shared-test", "ffn")
        def tanh_networks(observation_space, distribution, shared, hidden_units=(19,)):
            return build_feed_forward(observation_space, distribution, shared, hidden_units, activation="tanh")

        builder = get_model_builder("shared-test", "ffn")
        first = PPOAgent(builder, make_env("CartPole-v1"), horizon=32, workers=2, seed=0, verbose=False)

        @register_model_builder("shared-test", "ffn", overwrite=True)
        def relu_networks(observation_space, distribution, shared, hidden_units=(19,)):  # same shapes, other maths
            return build_feed_forward(observation_space, distribution, shared, hidden_units, activation="relu")

        second = PPOAgent(builder, make_env("CartPole-v1"), horizon=32, workers=2, seed=0, verbose=False)
        assert second._compiled is not first._compiled
        third = PPOAgent(get_model_builder("shared-test", "ffn"), make_env("CartPole-v1"), horizon=32, workers=2,
                         verbose=False)
        assert third._compiled is second._compiled
    finally:
        MODEL_BUILDERS.pop(("shared-test", "ffn"), None)


def test_an_agent_through_the_template_learns_what_an_agent_with_its_own_functions_learns():
    """The copies in and out of the template (the settings-only copy before an update included) change
    nothing: a changing learning rate and value clipping give the same numbers both ways."""
    builder = get_model_builder("simple", "ffn", hidden_units=(18,))

    def unnamed(observation_space, distribution):
        return builder(observation_space, distribution)

    settings = dict(horizon=32, workers=2, seed=4, value_clip=0.2, lr_schedule="linear", verbose=False)
    through_template = PPOAgent(builder, make_env("CartPole-v1"), **settings)
    own = PPOAgent(unnamed, make_env("CartPole-v1"), **settings)
    assert through_template._compiled.host is not through_template and own._compiled.host is own
    through_template.drill(3, 2, 32, verbose=False)
    own.drill(3, 2, 32, verbose=False)
    assert len({entry["learning_rate"] for entry in own.history}) == 3
    assert without_timing(through_template.history) == without_timing(own.history)
    for mine, theirs in zip(through_template.policy.get_weights() + through_template.value.get_weights(),
                            own.policy.get_weights() + own.value.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_an_agents_first_cycle_traces_nothing():
    """Every function a cycle calls through the template, its copies included, is traced while the
    template is compiled (on a background thread), never in a drill."""
    first = agent(0, hidden=(17,))
    compiled = first._compiled
    assert first.trace_count == 1  # waits for the background tracing
    functions = (compiled.optimize, compiled.back_up_and_value, compiled.copy)
    traced = [function.experimental_get_tracing_count() for function in functions]
    first.drill(2, 2, 32, verbose=False)
    agent(1, hidden=(17,)).drill(2, 2, 32, verbose=False)
    first._restore_weights()  # undoing a cycle, too
    assert [function.experimental_get_tracing_count() for function in functions] == traced


def _networks_with(layer_factory):
    from dexterity_nb.common.quiet_import import keras

    def build(observation_space, distribution, shared, hidden_units=(8,)):
        inputs = keras.Input(observation_space.shape)
        features = layer_factory()(keras.layers.Dense(hidden_units[0], activation="tanh")(inputs))
        policy = keras.Model(inputs, distribution.build_heads(features))
        value = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(8, activation="tanh")(inputs)))
        return policy, value

    return build


def test_a_named_builder_whose_loss_misses_a_weight_fails_when_the_agent_is_built():
    """Tracing runs on a background thread, but this check does not wait for it: it is made eagerly first."""
    from dexterity_nb.common.quiet_import import keras
    from dexterity_nb.models import MODEL_BUILDERS, register_model_builder

    class Unused(keras.layers.Layer):
        def build(self, input_shape):
            self.forgotten = self.add_weight(shape=(3,), name="forgotten")  # never used: it could never learn

        def call(self, features):
            return features

    try:
        register_model_builder("shared-unused", "ffn")(_networks_with(Unused))
        with pytest.raises(ValueError, match="does not depend on the trainable weights .*never learn"):
            PPOAgent(get_model_builder("shared-unused", "ffn"), make_env("CartPole-v1"), horizon=16, workers=2,
                     verbose=False)
    finally:
        MODEL_BUILDERS.pop(("shared-unused", "ffn"), None)


def test_tracing_that_fails_on_the_background_thread_fails_the_first_drill_cleanly():
    from dexterity_nb.common.quiet_import import keras, tensorflow as tf
    from dexterity_nb.models import MODEL_BUILDERS, register_model_builder

    class FailsWhenTracedForTraining(keras.layers.Layer):
        """Works eagerly (the check at build time), fails inside the compiled update."""

        def call(self, features, training=None):
            if training and not tf.executing_eagerly():
                raise ValueError("this layer cannot be traced for training")
            return features

    try:
        register_model_builder("shared-fails", "ffn")(_networks_with(FailsWhenTracedForTraining))
        failing = PPOAgent(get_model_builder("shared-fails", "ffn"), make_env("CartPole-v1"), horizon=16, workers=2,
                           verbose=False)
        weights = [w.copy() for w in failing.policy.get_weights()]
        with pytest.raises(RuntimeError, match="Tracing this architecture's compiled update failed") as raised:
            failing.drill(1, 1, 16, verbose=False)
        assert "cannot be traced for training" in str(raised.value.__cause__)
        assert failing.cycle == 0 and failing.history == []
        for mine, before in zip(failing.policy.get_weights(), weights):
            np.testing.assert_array_equal(mine, before)
    finally:
        MODEL_BUILDERS.pop(("shared-fails", "ffn"), None)
