"""Recurrent agents: builders, memory carried through gathering, sequence training, act/evaluate, save/load."""

import numpy as np
import pytest

from dexterity_nb.agent import sequences
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.policies import get_distribution
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import RECURRENT_MODEL_TYPES, get_model_builder, register_model_builder, build_recurrent


def recurrent_agent(model_type="gru", env=None, **options):
    settings = dict(horizon=24, workers=3, seed=3, chunk_length=8, verbose=False)
    settings.update(options)
    builder = get_model_builder("simple", model_type, hidden_units=(8,), recurrent_units=8)
    return PPOAgent(builder, env or make_env("CartPole-v1", mask_velocity=True), **settings)


def gathered(agent):
    agent._policy_forward_refresh()
    return agent.rollout.gather(agent._policy_forward, agent.horizon)


# ------------------------------------------------------------------ builders
@pytest.mark.parametrize("name", ["simple", "wide", "deep"])
@pytest.mark.parametrize("model_type", RECURRENT_MODEL_TYPES)
@pytest.mark.parametrize("shared", [False, True])
def test_every_recurrent_builder_steps_like_it_runs_a_sequence(name, model_type, shared):
    """One call on a sequence (with a reset inside) equals stepping it one observation at a time."""
    env = make_env("Pendulum-v1", mask_velocity=True)
    policy, value = get_model_builder(name, model_type, shared=shared)(env.observation_space,
                                                                      get_distribution(env.action_space, None))
    state_size = policy.inputs[2].shape[-1]
    assert state_size == value.inputs[2].shape[-1] == (2 if model_type == "lstm" else 1) * {"wide": 256}.get(name, 64)
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(2, 5, *env.observation_space.shape)).astype(np.float32)
    resets = np.zeros((2, 5), dtype=np.float32)
    resets[1, 3] = 1.0
    state = rng.normal(size=(2, state_size)).astype(np.float32)
    *whole, whole_state = policy([observations, resets, state])
    assert [tuple(output.shape) for output in whole] == [(10, 1), (10, 1)]  # Gaussian mean and log σ, one row per step
    stepped, memory = [], state
    for i in range(5):
        mean, _, memory = policy([observations[:, i:i + 1], resets[:, i:i + 1], np.asarray(memory)])
        stepped.append(np.asarray(mean))
    np.testing.assert_allclose(np.stack(stepped, axis=1).reshape(10, 1), np.asarray(whole[0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(memory), np.asarray(whole_state), atol=1e-5)
    shared_weights = {id(weight) for weight in policy.weights} & {id(weight) for weight in value.weights}
    assert bool(shared_weights) == shared


def test_a_reset_makes_the_past_irrelevant():
    env = make_env("CartPole-v1", mask_velocity=True)
    policy, _ = get_model_builder("simple", "gru")(env.observation_space, get_distribution(env.action_space, None))
    rng = np.random.default_rng(1)
    observations = rng.normal(size=(2, 4, 2)).astype(np.float32)
    observations[1, 2:] = observations[0, 2:]  # same last two steps, different past
    resets = np.zeros((2, 4), dtype=np.float32)
    resets[:, 2] = 1.0  # a new episode starts at step 2 in both
    logits, _ = policy([observations, resets, rng.normal(size=(2, 64)).astype(np.float32)])
    logits = np.asarray(logits).reshape(2, 4, 2)
    np.testing.assert_allclose(logits[0, 2:], logits[1, 2:], atol=1e-6)
    assert not np.allclose(logits[0, :2], logits[1, :2])


def test_unknown_combinations_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"\('simple', 'gru'\).*Add your own"):
        get_model_builder("simple", "transformer")
    with pytest.raises(TypeError, match="no option `_cell_type`"):
        get_model_builder("simple", "gru", _cell_type="lstm")


def test_a_custom_recurrent_builder_registers_and_trains_like_a_feed_forward_one():
    @register_model_builder("tiny_memory", "lstm", overwrite=True)
    def build_tiny(observation_space, distribution, shared, units=4):
        return build_recurrent(observation_space, distribution, shared, "lstm", hidden_units=(4,), recurrent_units=units)

    agent = PPOAgent(get_model_builder("tiny_memory", "lstm"), make_env("CartPole-v1", mask_velocity=True),
                     horizon=16, workers=2, chunk_length=4, seed=0, verbose=False)
    assert agent.recurrent and agent.memory_size == 2 * (2 * 4)  # policy (h, c) then value (h, c)
    history = agent.drill(2, epochs=2, batch_size=8, verbose=False)
    assert len(history) == 2 and np.isfinite(history[-1]["policy_loss"]) and agent.trace_count == 1


def test_a_recurrent_type_must_build_recurrent_networks():
    @register_model_builder("not_really_recurrent", "gru", overwrite=True)
    def build(observation_space, distribution, shared):
        return get_model_builder("simple", "ffn")(observation_space, distribution)

    with pytest.raises(ValueError, match="Recurrent types .* take \\[observations, resets, state\\]"):
        PPOAgent(get_model_builder("not_really_recurrent", "gru"), "CartPole-v1", verbose=False)


@pytest.mark.parametrize("options, message", [
    (dict(chunk_length=0), "`chunk_length` must be a positive int"),
    (dict(chunk_length=25), r"`chunk_length` \(25\) is longer than the horizon \(24\)"),
])
def test_bad_chunk_lengths_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        recurrent_agent(**options)


def test_chunk_length_is_refused_for_a_feed_forward_agent():
    with pytest.raises(ValueError, match="`chunk_length` .* feed-forward"):
        PPOAgent(get_model_builder("simple", "ffn"), "CartPole-v1", chunk_length=8, verbose=False)


def test_a_minibatch_smaller_than_a_chunk_is_refused_before_any_work():
    agent = recurrent_agent()
    with pytest.raises(ValueError, match=r"`batch_size` \(4\) is smaller than one training sequence \(chunk_length = 8\)"):
        agent.drill(1, epochs=1, batch_size=4)
    assert agent.cycle == 0


# ------------------------------------------------------------------ gathering
def test_gathering_carries_memory_across_steps_and_cycles_and_wipes_it_at_episode_ends():
    agent = recurrent_agent("lstm")
    first, second = gathered(agent), gathered(agent)
    for data in (first, second):
        assert data.memories.shape == data.next_memories.shape == (24, 3, agent.memory_size)
        ended = data.episode_ends[:-1]
        # After an episode ends, the next step starts from zero; otherwise from what the last call returned.
        np.testing.assert_array_equal(data.memories[1:][ended], 0.0)
        np.testing.assert_array_equal(data.memories[1:][~ended], data.next_memories[:-1][~ended])
    assert first.episode_ends.any() and np.abs(first.next_memories).max() > 0
    carried = first.next_memories[-1] * ~first.episode_ends[-1][:, None]
    np.testing.assert_array_equal(second.memories[0], carried)  # the next cycle goes on where this one stopped
    assert np.abs(second.memories[0]).max() > 0
    np.testing.assert_array_equal(first.memories[0], 0.0)  # the first cycle starts fresh episodes


def test_a_custom_gatherer_works_unchanged_with_memory():
    from dexterity_nb.agent.gather import Gatherer

    class Greedy(Gatherer):
        def select_action(self, predicted_parameters):
            (logits,) = predicted_parameters
            action = int(np.argmax(logits[0]))
            return action, float(self.distribution.log_probability(np.array([action]), logits)[0])

    agent = recurrent_agent()
    agent.assign_gatherer(Greedy)
    history = agent.drill(2, epochs=1, batch_size=16, verbose=False)
    assert history[-1]["frames"] == 2 * 24 * 3


# ------------------------------------------------------------------ training on sequences
def test_before_any_update_training_recomputes_exactly_what_gathering_saw():
    """Chunk starts hold the gathered memory, and the ratio π_θ/π_old is 1 at every valid step."""
    agent = recurrent_agent("gru", horizon=20, chunk_length=8)  # 20 = 8 + 8 + 4 steps and 4 of padding
    data = gathered(agent)
    chunks = sequences.cut_into_chunks(data.episode_ends, agent.chunk_length)
    starts = sequences.chunk_start_states(data.memories, chunks)
    for chunk in range(chunks.count):
        t, w = chunks.time_indices[chunk, 0], chunks.worker_indices[chunk, 0]
        np.testing.assert_array_equal(starts[chunk], data.memories[t, w])
    observations = sequences.gather_chunks(data.observations, chunks)
    policy_memory = agent._policy_memory_size
    *parameters, _ = agent.policy([observations, chunks.reset.astype(np.float32), starts[:, :policy_memory]])
    actions = sequences.gather_chunks(data.actions, chunks).reshape(-1)
    log_probabilities = np.asarray(agent.distribution.log_probability(actions, *parameters)).reshape(chunks.count, -1)
    gathered_log_probabilities = sequences.gather_chunks(data.log_probabilities, chunks)
    ratio = np.exp(log_probabilities - gathered_log_probabilities)[chunks.valid]
    assert data.episode_ends.any() and chunks.reset.any()  # the check crosses episode boundaries
    np.testing.assert_allclose(ratio, 1.0, atol=2e-6)
    # The value pass (one step from each recorded memory) equals the value network run over the chunks.
    values, _, _ = agent._advantages(data)
    chunk_values, _ = agent.value([observations, chunks.reset.astype(np.float32), starts[:, policy_memory:]])
    np.testing.assert_allclose(np.asarray(chunk_values).reshape(chunks.count, -1)[chunks.valid],
                               sequences.gather_chunks(values, chunks)[chunks.valid], atol=1e-5)


def test_the_first_epoch_starts_with_ratio_one_so_nothing_is_clipped():
    agent = recurrent_agent(horizon=32)
    history = agent.drill(1, epochs=1, batch_size=96, verbose=False)  # one minibatch: the ratio is 1 throughout
    assert history[-1]["clip_fraction"] == 0.0 and history[-1]["approx_kl"] < 1e-9


def test_padding_does_not_count_in_the_loss():
    """A horizon that is not a multiple of chunk_length trains as it would with the padding removed."""
    agent = recurrent_agent(horizon=20, chunk_length=8)
    data = gathered(agent)
    values, advantages, returns = agent._advantages(data)
    update_data, samples, _ = agent._update_data(data, values, advantages, returns, 16)
    valid = update_data[2]
    assert samples == 3 * 3 and valid.sum() == 20 * 3
    poisoned = list(update_data)
    for index in (5, 6, 7, 8):  # old log-probabilities, advantages, returns and old values at padding
        poisoned[index] = np.where(valid > 0, update_data[index], 1e6).astype(np.float32)
    before = [variable.numpy() for variable in agent._variables]
    minibatches = np.arange(samples, dtype=np.int32)[None, None]  # one epoch of one minibatch: every chunk
    agent._sync_graph_settings(agent.learning_rate)
    results = []
    for arrays in (update_data, poisoned):
        agent._back_up_and_value(data.observations[0], data.memories[0])
        metrics, completed, finite = agent._optimize(tuple(arrays), minibatches)
        results.append(([variable.numpy() for variable in agent._variables], np.asarray(metrics)))
        agent._restore_weights()
        assert bool(finite) and int(completed) == 1
    for variable, clean, poisoned_variable in zip(before, results[0][0], results[1][0]):
        assert not np.array_equal(variable, clean) or variable.size == 0
        np.testing.assert_allclose(clean, poisoned_variable, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


def test_a_recurrent_drill_is_reproducible_and_traced_once():
    histories = []
    for _ in range(2):
        agent = recurrent_agent("rnn")
        history = agent.drill(3, epochs=2, batch_size=16, verbose=False)
        histories.append([(entry["mean_return"], entry["policy_loss"], entry["value_loss"]) for entry in history])
        assert agent.trace_count == 1
    assert histories[0] == histories[1]


def test_an_interrupted_recurrent_drill_is_undone_and_starts_fresh_episodes():
    class Interrupt(Callback):
        def on_gather_end(self, agent):
            if agent.cycle == 1:
                raise KeyboardInterrupt

    agent = recurrent_agent()
    agent.drill(1, epochs=1, batch_size=16, verbose=False)
    weights = [variable.numpy() for variable in agent._variables]
    agent.drill(2, epochs=1, batch_size=16, verbose=False, callbacks=[Interrupt()])
    assert agent.cycle == 1 and agent.drill_outcome == "interrupted"
    for before, after in zip(weights, agent._variables):
        np.testing.assert_array_equal(before, after.numpy())
    np.testing.assert_array_equal(gathered(agent).memories[0], 0.0)


# ------------------------------------------------------------------ act, evaluate, save, load
def test_act_remembers_until_reset_memory():
    agent = recurrent_agent()
    agent.drill(2, epochs=2, batch_size=16, verbose=False)
    observation = np.array([0.01, -0.02], dtype=np.float32)
    agent.reset_memory()
    agent.act(observation, deterministic=True)
    remembered = agent._act_memory.copy()
    assert np.abs(remembered).max() > 0
    agent.act(observation, deterministic=True)
    assert not np.array_equal(agent._act_memory, remembered)  # the memory moved on
    agent.reset_memory()
    np.testing.assert_array_equal(agent._act_memory, 0.0)
    agent.act(observation, deterministic=True)
    np.testing.assert_array_equal(agent._act_memory, remembered)  # the same first step again


def test_save_load_gives_identical_actions_for_the_same_observation_sequence(tmp_path):
    agent = recurrent_agent("lstm")
    agent.drill(3, epochs=2, batch_size=16, verbose=False)
    path = agent.save(tmp_path / "memory.npz")
    loaded = PPOAgent.load(path)
    assert loaded.recurrent and loaded.chunk_length == agent.chunk_length == 8
    assert loaded.memory_size == agent.memory_size
    observations = np.random.default_rng(5).normal(scale=0.1, size=(40, 2)).astype(np.float32)
    for deterministic in (True, False):
        actions = []
        for player in (agent, loaded):
            player.reset_memory()
            player._act_rng = np.random.default_rng(9)
            actions.append([player.act(observation, deterministic=deterministic) for observation in observations])
        assert actions[0] == actions[1]
    assert agent.evaluate(3).returns.tolist() == loaded.evaluate(3).returns.tolist()
    assert loaded.drill(1, epochs=1, batch_size=16, verbose=False)[-1]["cycle"] == 4


@pytest.mark.parametrize("horizon, batch_size, message", [
    (20, 64, r"`horizon` \(20\) must be a multiple of `chunk_length` \(8\).*chunk_length=4 or horizon=16"),
    (32, 24, r"3 chunks cannot be split evenly; use a batch_size that is a multiple of chunk_length × processes = 16"),
    (32, 8, r"1 chunks cannot be split evenly"),
    (32, 160, r"asks 10 chunks of each process per minibatch, more than the process with fewest workers has \(8\)"),
])
def test_under_mpi_recurrent_minibatches_must_split_into_equal_unpadded_shares(horizon, batch_size, message):
    from types import SimpleNamespace

    two_ranks = SimpleNamespace(communicator=SimpleNamespace(size=2), chunk_length=8, horizon=horizon, workers=4)
    with pytest.raises(ValueError, match=message):
        PPOAgent._check_sequences_split_evenly(two_ranks, batch_size)
    PPOAgent._check_sequences_split_evenly(SimpleNamespace(**{**vars(two_ranks), "horizon": 32}), 64)  # fine


@pytest.mark.parametrize("model_type", RECURRENT_MODEL_TYPES)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_gathering_steps_in_numpy_exactly_like_keras(model_type, env_id):
    from dexterity_nb.models.numpy_forward import NumpyRecurrentStep

    agent = recurrent_agent(model_type, env=make_env(env_id, mask_velocity=True))
    agent.drill(1, epochs=1, batch_size=16, verbose=False)  # weights away from their initial values
    assert isinstance(agent._policy_forward, NumpyRecurrentStep)
    agent._policy_forward_refresh()
    rng = np.random.default_rng(2)
    observations = rng.normal(size=(4, *agent.env.observation_space.shape)).astype(np.float32)
    memories = rng.normal(scale=0.5, size=(4, agent.memory_size)).astype(np.float32)
    mirror_parameters, mirror_memories = agent._policy_forward(observations, memories)
    steps, resets = observations[:, None], np.zeros((4, 1), dtype=np.float32)
    *keras_parameters, policy_memory = agent.policy([steps, resets, memories[:, :agent._policy_memory_size]])
    _, value_memory = agent.value([steps, resets, memories[:, agent._policy_memory_size:]])
    for mirrored, expected in zip(mirror_parameters, keras_parameters):
        np.testing.assert_allclose(mirrored, np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(mirror_memories, np.concatenate([policy_memory, value_memory], axis=-1), atol=1e-5)


def test_a_network_the_mirror_does_not_know_is_stepped_compiled_and_trains():
    @register_model_builder("gelu_memory", "gru", overwrite=True)
    def build(observation_space, distribution, shared):
        return build_recurrent(observation_space, distribution, shared, "gru", hidden_units=(8,), recurrent_units=8,
                               activation="gelu")

    agent = PPOAgent(get_model_builder("gelu_memory", "gru"), make_env("CartPole-v1", mask_velocity=True), horizon=24,
                     workers=3, chunk_length=8, seed=0, verbose=False)
    assert callable(agent._policy_forward) and not hasattr(agent._policy_forward, "refresh")  # the compiled step
    history = agent.drill(2, epochs=1, batch_size=16, verbose=False)
    assert history[-1]["episodes"] > 0 and np.isfinite(history[-1]["value_loss"])


def test_transformers_work_with_memory_and_their_statistics_survive_save_and_load(tmp_path):
    env = make_env("CartPole-v1", transformers=["state", "reward"], mask_velocity=True)
    agent = recurrent_agent(env=env)
    agent.drill(2, epochs=1, batch_size=16, verbose=False)
    statistics = agent.transformers[0].running_statistics()
    (count_before,) = {int(value.count) for value in statistics.values()}
    assert count_before >= 2 * 24 * 3  # every gathered state was folded in
    loaded = PPOAgent.load(agent.save(tmp_path / "normalised.npz"))
    for name, value in loaded.transformers[0].running_statistics().items():
        np.testing.assert_array_equal(value.mean, statistics[name].mean)
    assert [type(transformer).__name__ for transformer in loaded.transformers] == [
        "StateNormalizationTransformer", "RewardNormalizationTransformer"]
    assert np.isfinite(loaded.drill(1, epochs=1, batch_size=16, verbose=False)[-1]["value_loss"])
