"""The compiled functions of an agent: the policy call of gathering, the value pass and the update.

:func:`build_compiled_functions` traces each once per agent (``agent.trace_count`` counts the
update's traces; a test checks it stays 1) and attaches them to the agent:

=============================  ======================================================================
``agent._policy_forward``      gathering's one batched policy call per step: ``observations ->
                               parameters`` (feed-forward; a NumPy mirror when it can), or
                               ``(observations, memory) -> (parameters, memory)`` (recurrent)
``agent._back_up_and_value``   V(s) of a cycle's states, and a copy of the weights to undo the cycle
``agent._restore_weights``     puts that copy back
``agent._optimize``            all epochs of one cycle, every minibatch a gradient step
``agent._local_gradients``,    the two halves of a minibatch step around the MPI Allreduce
``agent._apply_flat_gradients``
=============================  ======================================================================

**Recurrent agents** (model types "rnn", "gru", "lstm") carry a *memory* per worker: the
policy's hidden state followed by the value network's, one flat vector of ``memory_size``
numbers. Gathering steps both networks once per step, so that the memory at every step is
recorded; training cuts each worker's horizon into chunks of ``chunk_length`` steps
(:mod:`dexterity_nb.agent.sequences`) and a minibatch is whole chunks, each starting from the
memory gathering recorded at its first step (truncated back-propagation through time).
"""

from __future__ import annotations

import gymnasium
import numpy as np

__all__ = ["UPDATE_METRICS", "build_compiled_functions", "compile_now"]

# What the compiled update reports per cycle, in this order: means over the applied minibatches.
# gradient_norm is the global norm ‖g‖ before clipping (with MPI: of the ranks' mean gradient).
UPDATE_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "gradient_norm")


def build_compiled_functions(agent):
    """Trace the agent's compiled functions (see the module docstring) and run each once."""
    import tensorflow as tf  # here, not at import: the CLI checks its arguments before TensorFlow loads

    from dexterity_nb.agent import objectives

    observation_shape = agent.env.observation_space.shape
    policy, value, distribution = agent.policy, agent.value, agent.distribution
    variables, optimizer = agent._variables, agent.optimizer
    recurrent, policy_memory = agent.recurrent, agent._policy_memory_size
    agent._policy_forward = _policy_forward(agent) if recurrent else _feed_forward_policy_forward(agent)

    agent.trace_count = 0  # how often the compiled update was traced (a test checks it stays 1)
    agent._graph_settings = settings = {
        name: tf.Variable(0.0, trainable=False, name=name)
        for name in ("clip", "c_entropy", "c_value", "gradient_clipping", "value_clip")
    }
    agent._graph_setting_values = {}
    action_dtype = tf.int64 if isinstance(distribution.action_space, gymnasium.spaces.Discrete) else tf.float32
    action_shape = distribution.action_space.shape

    def ppo_loss(parameters, predicted_values, actions, old_log_probabilities, advantages, returns, old_values,
                 behaviour_weights, advantage_moments=None, mask=None):
        """L = L^CLIP + c_value · L^V − c_entropy · H[π] of one minibatch, and the 5 loss metrics.

        ``behaviour_weights``: π_old/μ per sample, truncated (1 with the default gatherer).
        ``mask``: 1 for a step that counts, 0 for padding (recurrent chunks); ``None``: all count.
        """
        log_probabilities = distribution.log_probability(actions, *parameters)
        entropy = objectives.masked_mean(distribution.entropy(*parameters), mask)
        normalized = objectives.normalize_advantages(advantages, moments=advantage_moments, mask=mask)
        policy_loss = objectives.clipped_surrogate_loss(log_probabilities, old_log_probabilities, normalized,
                                                        settings["clip"], mask, behaviour_weights)
        value_loss = tf.cond(
            settings["value_clip"] > 0,
            lambda: objectives.value_loss(predicted_values, returns, old_values, settings["value_clip"], mask),
            lambda: objectives.value_loss(predicted_values, returns, mask=mask),
        )
        loss = policy_loss + settings["c_value"] * value_loss - settings["c_entropy"] * entropy
        metrics = tf.stack([
            policy_loss, value_loss, entropy,
            objectives.approximate_kl(log_probabilities, old_log_probabilities, mask),
            objectives.clip_fraction(log_probabilities, old_log_probabilities, settings["clip"], mask),
        ])
        return loss, metrics

    def gradients_of(tape, loss):
        gradients = tape.gradient(loss, variables)
        unreached = [variable.path for gradient, variable in zip(gradients, variables) if gradient is None]
        if unreached:  # known while tracing (or at every eager call): a network part the loss never uses
            raise ValueError(
                f"The loss does not depend on the trainable weights {unreached}: they would never learn. "
                "Check that every layer of the model builder's networks leads to an output, or make the "
                "layer non-trainable (layer.trainable = False)."
            )
        return gradients

    def step_gradients(data, indices, advantage_moments=None):
        """Loss, the 5 loss metrics and the gradient of one minibatch of steps (``indices``)."""
        observations, actions, old_log_probabilities, advantages, returns, old_values, behaviour_weights = (
            tf.gather(array, indices) for array in data
        )
        with tf.GradientTape() as tape:
            parameters = policy(observations, training=True)
            parameters = list(parameters) if isinstance(parameters, (list, tuple)) else [parameters]
            predicted_values = tf.squeeze(value(observations, training=True), axis=-1)
            loss, metrics = ppo_loss(parameters, predicted_values, actions, old_log_probabilities, advantages, returns,
                                     old_values, behaviour_weights, advantage_moments)
        return loss, metrics, gradients_of(tape, loss)

    def chunk_gradients(data, indices, advantage_moments=None):
        """The same for a minibatch of whole chunks (``indices`` of chunks), each from its recorded memory."""
        (observations, resets, valid, memories, actions, old_log_probabilities, advantages, returns, old_values,
         behaviour_weights) = (tf.gather(array, indices) for array in data)

        def steps(array):  # (chunks, L, ...) -> (chunks·L, ...), the networks' output layout
            return tf.reshape(array, tf.concat([[-1], tf.shape(array)[2:]], axis=0))

        with tf.GradientTape() as tape:
            *parameters, _ = policy([observations, resets, memories[:, :policy_memory]], training=True)
            predicted_values = tf.squeeze(value([observations, resets, memories[:, policy_memory:]], training=True)[0], -1)
            loss, metrics = ppo_loss(parameters, predicted_values, steps(actions), steps(old_log_probabilities),
                                     steps(advantages), steps(returns), steps(old_values), steps(behaviour_weights),
                                     advantage_moments, steps(valid))
        return loss, metrics, gradients_of(tape, loss)

    def apply_gradients(gradients, norm=None):
        """Clip the gradient to ``gradient_clipping`` and take one Adam step; returns ‖g‖ before clipping."""
        norm = tf.linalg.global_norm(gradients) if norm is None else norm
        optimizer.apply(objectives.clip_by_global_norm(gradients, settings["gradient_clipping"], norm), variables)
        return norm

    if recurrent:
        length = agent.chunk_length  # static: XLA compiles for fixed shapes
        minibatch_gradients = chunk_gradients
        data_signature = (
            tf.TensorSpec((None, length, *observation_shape), tf.float32),  # observations
            tf.TensorSpec((None, length), tf.float32),  # resets
            tf.TensorSpec((None, length), tf.float32),  # valid
            tf.TensorSpec((None, agent.memory_size), tf.float32),  # memories at chunk starts
            tf.TensorSpec((None, length, *action_shape), action_dtype),
            *[tf.TensorSpec((None, length), tf.float32)] * 5,  # log π_old, advantages, returns, old values, π_old/μ
        )
    else:
        minibatch_gradients = step_gradients
        data_signature = (
            tf.TensorSpec((None, *observation_shape), tf.float32),
            tf.TensorSpec((None, *action_shape), action_dtype),
            *[tf.TensorSpec((None,), tf.float32)] * 5,  # log π_old, advantages, returns, old values, π_old/μ
        )

    # autograph=False: the loop is written with tf.while_loop by hand, which makes tracing
    # (once per agent) about twice as fast as letting autograph convert every function called.
    # jit_compile (XLA) for recurrent networks: their many small per-step operations cost ~4.5×
    # less time fused (measured on CartPole, GRU: 0.46 s → 0.10 s per cycle of 40 minibatches),
    # for a compilation of a few seconds at the first cycle (and again if epochs or batch_size change).
    # Feed-forward updates gain too little to pay for it in short drills.
    @tf.function(input_signature=[data_signature, tf.TensorSpec((None, None, None), tf.int32)],
                 autograph=False, jit_compile=recurrent)
    def optimize(data, minibatches):
        """All epochs of one cycle in one compiled call: no Python between minibatches.

        ``minibatches[e, b]`` are the indices of the samples (steps, or chunks for a recurrent
        agent) of minibatch b of epoch e. Stops at the first minibatch whose loss or gradient is
        not finite, without applying it. Returns (mean metrics over the applied minibatches, how
        many were applied, all finite?); the metrics are the 5 of ``minibatch_gradients`` then the
        gradient's norm before clipping.
        """
        agent.trace_count += 1  # runs only while tracing
        batches_per_epoch = tf.shape(minibatches)[1]
        total = tf.shape(minibatches)[0] * batches_per_epoch

        def keep_going(step, completed, finite, metric_sums):
            return tf.logical_and(step < total, finite)

        def one_minibatch(step, completed, finite, metric_sums):
            epoch, batch = step // batches_per_epoch, step % batches_per_epoch
            indices = minibatches[epoch, batch]
            loss, metrics, gradients = minibatch_gradients(data, indices)
            norm = tf.linalg.global_norm(gradients)
            finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))

            def apply():
                apply_gradients(gradients, norm)
                return completed + 1, metric_sums + tf.concat([metrics, tf.reshape(norm, [1])], axis=0)

            completed, metric_sums = tf.cond(finite, apply, lambda: (completed, metric_sums))
            return step + 1, completed, finite, metric_sums

        _, completed, finite, metric_sums = tf.while_loop(
            keep_going, one_minibatch, (tf.constant(0), tf.constant(0), tf.constant(True), tf.zeros([len(UPDATE_METRICS)]))
        )
        return metric_sums / tf.cast(tf.maximum(completed, 1), tf.float32), completed, finite

    # The MPI path (common/mpi.py) splits a minibatch step in two compiled halves around the
    # Allreduce: this rank's flat gradient, then the update with the ranks' mean gradient.
    variable_sizes = [int(np.prod(variable.shape)) for variable in variables]

    @tf.function(input_signature=[data_signature, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((2,), tf.float32)],
                 autograph=False)
    def local_gradients(data, indices, advantage_moments):
        """One flat float32 vector: this rank's gradient, then the 5 loss metrics, then the loss."""
        loss, metrics, gradients = minibatch_gradients(data, indices, (advantage_moments[0], advantage_moments[1]))
        flat = [tf.reshape(tf.cast(g, tf.float32), [-1]) for g in gradients]
        return tf.concat(flat + [tf.cast(metrics, tf.float32), tf.reshape(tf.cast(loss, tf.float32), [1])], axis=0)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.float32)], autograph=False)
    def apply_flat_gradients(flat):
        """Apply the ranks' mean gradient (flat); returns its norm before clipping."""
        return apply_gradients([tf.cast(tf.reshape(piece, variable.shape), variable.dtype)
                                for piece, variable in zip(tf.split(flat, variable_sizes), variables)])

    # Undoing an unfinished cycle: weights and optimizer state are copied on the device in one
    # compiled call per cycle (reading ~30 variables one by one into NumPy costs milliseconds).
    saved_state = list(variables) + list(optimizer.variables)
    backups = [tf.Variable(variable, trainable=False) for variable in saved_state]

    def back_up():
        for backup, variable in zip(backups, saved_state):
            backup.assign(variable)

    if recurrent:
        @tf.function(input_signature=[tf.TensorSpec((None, *observation_shape), tf.float32),
                                      tf.TensorSpec((None, agent.memory_size), tf.float32)], autograph=False)
        def back_up_and_value(observations, memories):
            """V(s) of each observation, one step from its recorded memory; and a copy of the weights."""
            back_up()
            steps = observations[:, None]
            predicted, _ = value([steps, tf.zeros(tf.shape(steps)[:2]), memories[:, policy_memory:]])
            return tf.squeeze(predicted, axis=-1)
    else:
        @tf.function(input_signature=[tf.TensorSpec((None, *observation_shape), tf.float32)], autograph=False)
        def back_up_and_value(observations):
            """V(observations), and a copy of the weights and optimizer state, in one call per cycle."""
            back_up()
            return tf.squeeze(value(observations), axis=-1)

    @tf.function(autograph=False)
    def restore():
        for backup, variable in zip(backups, saved_state):
            variable.assign(backup)

    agent._optimize = optimize
    agent._local_gradients = local_gradients
    agent._apply_flat_gradients = apply_flat_gradients
    agent._back_up_and_value, agent._restore_weights = back_up_and_value, restore
    agent._backup_is_fresh = False  # True once this cycle's copy is taken (see PPOAgent._restore)
    compile_now(agent)


def compile_now(agent):
    """Trace and run every compiled function once, on dummy data, and undo the update.

    A network or distribution that cannot be trained fails here, before any work; and the
    one-time costs (tracing, TensorFlow's first-run graph optimisation, ~0.5 s) are paid while
    building the agent, so the first cycle's time in the log is like every other cycle's.
    """
    space = agent.distribution.action_space
    discrete = isinstance(space, gymnasium.spaces.Discrete)
    steps = (1, agent.chunk_length) if agent.recurrent else (1,)  # one chunk, or one step
    observations = np.zeros((*steps, *agent.env.observation_space.shape), dtype=np.float32)
    actions = np.zeros((*steps, *space.shape), dtype=np.int64 if discrete else np.float32)
    if discrete:
        actions += space.start
    zeros = np.zeros(steps, dtype=np.float32)
    agent._sync_graph_settings(agent.learning_rate)
    minibatches = np.zeros((1, 1, 1), dtype=np.int32)
    if agent.recurrent:
        memories = np.zeros((1, agent.memory_size), dtype=np.float32)
        agent._back_up_and_value(observations[:, 0], memories)
        data = (observations, zeros, np.ones(steps, dtype=np.float32), memories, actions, zeros, zeros, zeros, zeros, zeros + 1)
        # Traced (which checks every weight gets a gradient) but not run: XLA compiles per shape,
        # and this dummy shape is never used again.
        agent._optimize.get_concrete_function(data, minibatches)
    else:
        agent._back_up_and_value(observations)
        agent._optimize((observations, actions, zeros, zeros, zeros, zeros, zeros + 1), minibatches)
    agent._restore_weights()


def _feed_forward_policy_forward(agent):
    """``observations -> parameters``: the NumPy mirror if it matches Keras, else a compiled call."""
    import tensorflow as tf

    from dexterity_nb.models.numpy_forward import NumpyForward

    observation_shape = agent.env.observation_space.shape
    mirror = NumpyForward.mirror(agent.policy)
    if mirror is not None and mirror.matches(observation_shape):
        return mirror
    compiled_policy = tf.function(agent.policy, input_signature=[tf.TensorSpec((None, *observation_shape), tf.float32)])

    def policy_forward(observations):
        outputs = compiled_policy(tf.constant(observations, dtype=tf.float32))
        return [output.numpy() for output in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]

    return policy_forward


def _policy_forward(agent):
    """``(observations, memories) -> (parameters, new memories)``: one step of both recurrent networks.

    The value network is stepped too, so that its memory at every gathered step is known for
    the value pass and for training. In NumPy when the networks are ones the mirror knows (the
    package's recurrent builders), else both in one compiled call.
    """
    import tensorflow as tf

    from dexterity_nb.models.numpy_forward import NumpyRecurrentStep

    policy, value, policy_memory = agent.policy, agent.value, agent._policy_memory_size

    @tf.function(input_signature=[tf.TensorSpec((None, *agent.env.observation_space.shape), tf.float32),
                                  tf.TensorSpec((None, agent.memory_size), tf.float32)], autograph=False)
    def step(observations, memories):
        steps = observations[:, None]
        resets = tf.zeros(tf.shape(steps)[:2])
        *parameters, policy_state = policy([steps, resets, memories[:, :policy_memory]])
        _, value_state = value([steps, resets, memories[:, policy_memory:]])
        return parameters, tf.concat([policy_state, value_state], axis=-1)

    def policy_forward(observations, memories):
        parameters, memories = step(tf.constant(observations, dtype=tf.float32), tf.constant(memories, dtype=tf.float32))
        return [parameter.numpy() for parameter in parameters], memories.numpy()

    mirror = NumpyRecurrentStep.mirror(policy, value, policy_memory)
    if mirror is not None and mirror.matches(policy_forward, agent.env.observation_space.shape, agent.memory_size):
        return mirror
    return policy_forward
