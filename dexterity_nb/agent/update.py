"""The compiled functions of an agent: the policy call of gathering, the value pass and the update.

:func:`build_compiled_functions` traces each once per *architecture* and process: agents built
from the same model builder config, spaces and distribution share one set of traced functions,
hosted by a template (``_Template``) whose variables take each agent's state for the length of
a call. The template's tracing (~1 s) runs on a background thread from the first agent's
construction on, so building takes ~0.3 s and the tracing overlaps with what follows; the first
call that needs the functions waits for it. ``agent.trace_count`` counts the update's traces (a
test checks it stays 1). Attached to the agent:

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

from dexterity_nb.common.seeding import random_streams_kept

__all__ = ["UPDATE_METRICS", "build_compiled_functions", "compile_now"]

# What the compiled update reports per cycle, in this order: means over the applied minibatches.
# gradient_norm is the global norm ‖g‖ before clipping (with MPI: of the ranks' mean gradient).
UPDATE_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "gradient_norm")


def build_compiled_functions(agent):
    """Give the agent its compiled functions (see the module docstring), traced once per architecture.

    The functions of the first agent of an architecture are traced (and run once on dummy data)
    on a *template*: networks and an optimizer of that architecture owned by no agent, on a
    background thread (an eager check that the loss reaches every weight runs first, here). Every
    agent of the same architecture in this process then calls those same traced functions: its
    weights, optimizer state and settings are copied into the template's variables before a call
    (one compiled copy, ~0.5 ms) and back after a call that changed them. Building a second agent
    thus costs its networks and optimizer only, and nothing is traced again. An agent whose
    networks cannot be named (a builder without ``config``), or one under MPI, gets functions of its
    own, traced here.
    """
    import tensorflow as tf  # here, not at import: the CLI checks its arguments before TensorFlow loads

    agent._policy_forward = _policy_forward(agent) if agent.recurrent else _feed_forward_policy_forward(agent)
    agent._graph_settings = _settings_variables()
    agent._graph_setting_values = {}
    key = _architecture_key(agent)
    compiled = _COMPILED.get(key) if key is not None else None
    if compiled is None:
        if key is None:
            compiled = _compile(agent)
        else:  # traced on a background thread while the agent starts its first cycle (see _Compiled)
            compiled = _compile(_Template(agent), template=True)
            _COMPILED[key] = compiled
    agent._compiled = compiled
    if compiled.host is agent:
        agent._optimize, agent._local_gradients = compiled.optimize, compiled.local_gradients
        agent._apply_flat_gradients = compiled.apply_flat_gradients
        agent._back_up_and_value, agent._restore_weights = compiled.back_up_and_value, compiled.restore
    else:
        _attach_through_template(agent, compiled, tf)
    agent._backup_is_fresh = False  # True once this cycle's copy is taken (see PPOAgent._restore)


# Compiled functions per architecture key (see _architecture_key), for the life of the process.
_COMPILED: dict = {}
_SETTINGS = ("clip", "c_entropy", "c_value", "gradient_clipping", "value_clip")


def _settings_variables() -> dict:
    """The hyperparameters the compiled update reads, as variables (a changed value is an assignment, not a retrace)."""
    import tensorflow as tf

    return {name: tf.Variable(0.0, trainable=False, name=name) for name in _SETTINGS}


def _state_of(owner) -> list:
    """The variables a compiled call reads or changes: weights, optimizer state, settings (in a fixed order).

    As TensorFlow variables (a Keras variable's ``.value``): passed to a compiled function, a Keras
    variable would arrive as a tensor, which cannot be assigned.
    """
    import tensorflow as tf

    state = [*owner._variables, *owner.optimizer.variables, *(owner._graph_settings[name] for name in _SETTINGS)]
    return [variable if isinstance(variable, tf.Variable) else variable.value for variable in state]


def _architecture_key(agent):
    """What makes two agents' compiled functions the same graph, or ``None`` if it cannot be told.

    The builder's config (name, type and options), the spaces, the distribution, the memory and
    chunk sizes, and the shape of every variable the functions touch (a last check that the
    networks really are alike). Under MPI every agent keeps its own functions: its minibatch
    halves run once per Allreduce, too often to copy the state around them.
    """
    import json

    from dexterity_nb.models import MODEL_BUILDERS, ModelBuilder

    builder = agent.model_builder
    builder_config = builder.config() if hasattr(builder, "config") else None
    if builder_config is None or agent.communicator.size > 1:
        return None
    try:
        distribution = json.dumps(agent.distribution.config(), sort_keys=True, default=repr)
        options = json.dumps(builder_config, sort_keys=True)
    except (TypeError, ValueError):
        return None
    # The function that builds the networks, itself (not its name): a builder registered again under the
    # same name (a notebook cell edited and re-run) builds other networks, so it must not find these graphs.
    function = MODEL_BUILDERS.get((builder.name, builder.model_type)) if isinstance(builder, ModelBuilder) else builder
    shapes = tuple((tuple(variable.shape), str(variable.dtype)) for variable in [*agent._variables, *agent.optimizer.variables])
    space = agent.env.observation_space
    key = (function, options, type(agent.distribution), distribution, repr(agent.distribution.action_space),
           tuple(space.shape), str(space.dtype), agent.recurrent, agent.chunk_length, agent.memory_size,
           agent._policy_memory_size, shapes)
    try:
        hash(key)
    except TypeError:  # a builder object that cannot be a dict key
        return None
    return key


class _Template:
    """Networks and an optimizer of an agent's architecture, owned by no agent: the host of shared functions.

    Built with the agent's model builder, without drawing from the random streams a seeded agent
    uses (Python's ``random``, which Keras initialisers take their seeds from, and Keras's global
    seed generator are restored), so whether a template was built in this process changes nothing.
    """

    def __init__(self, agent):
        from dexterity_nb.common.quiet_import import keras

        with random_streams_kept():
            self.policy, self.value = agent.model_builder(agent.env.observation_space, agent.distribution)
        from dexterity_nb.agent.ppo_agent import _unique_variables  # the agent's own list, built the same way

        self._variables = _unique_variables(self.policy.trainable_variables + self.value.trainable_variables)
        self.optimizer = keras.optimizers.Adam(agent.learning_rate, epsilon=1e-5)
        self.optimizer.build(self._variables)
        self._graph_settings = _settings_variables()
        self._graph_setting_values = {}
        for name in ("env", "distribution", "recurrent", "_policy_memory_size", "memory_size", "chunk_length",
                     "learning_rate"):
            setattr(self, name, getattr(agent, name))

    def _sync_graph_settings(self, learning_rate):
        pass  # the template's settings are copied from the calling agent before every call


def _attach_through_template(agent, compiled, tf):
    """The agent's functions: the template's, with the agent's state copied in before and back after.

    A lock makes each copy-in, call and copy-back one step, so two agents drilled from two threads
    (a dashboard's background drill and a cell) take turns instead of mixing their states. The copy
    that undoes an unfinished cycle is the agent's own (``backups``), taken when its values are.
    """
    mine, theirs = _state_of(agent), _state_of(compiled.host)
    if [(tuple(a.shape), a.dtype) for a in mine] != [(tuple(b.shape), b.dtype) for b in theirs]:
        raise RuntimeError("Internal error: an agent's variables do not match its architecture's template.")
    learned = len(mine) - len(_SETTINGS)  # weights and optimizer state: what a call changes and a backup keeps
    backups = [tf.Variable(variable, trainable=False) for variable in mine[:learned]]
    lock = compiled.lock
    copies = {}

    def copy(sources, targets):
        # The traced copy for this agent's own lists, looked up once: a call of the tf.function works out the
        # signature of ~40 variable arguments every time (~1 ms, 4 calls a cycle); its concrete function does not.
        key = (id(sources), id(targets))
        if key not in copies:
            copies[key] = compiled.copy.get_concrete_function(sources, targets)
        copies[key](sources, targets)

    mine_learned, theirs_learned = mine[:learned], theirs[:learned]  # the same list objects every call
    # What a cycle changes between its value pass and its update: the settings and the learning rate.
    rate = _index_of(mine, agent.optimizer.learning_rate)
    mine_settings, theirs_settings = [mine[rate], *mine[learned:]], [theirs[rate], *theirs[learned:]]
    me = object()  # compiled.holder is me: the template holds my state, as of my last call through it

    def optimize(data, minibatches):
        compiled.wait()
        with lock:
            if compiled.holder is me:  # the value pass just copied my state in: only the settings changed since
                copy(mine_settings, theirs_settings)
            else:
                copy(mine, theirs)
            result = compiled.optimize(data, minibatches)
            copy(theirs_learned, mine_learned)
            compiled.holder = me
        return result

    def back_up_and_value(*arguments):
        compiled.wait()
        with lock:
            copy(mine_learned, backups)
            copy(mine, theirs)  # always: weights may have been set from outside since the last cycle
            compiled.holder = me
            return compiled.back_up_and_value(*arguments)  # (the template's own backup goes unused)

    def restore():
        compiled.wait()
        with lock:
            copy(backups, mine_learned)
            if compiled.holder is me:
                compiled.holder = None

    agent._optimize, agent._back_up_and_value, agent._restore_weights = optimize, back_up_and_value, restore
    agent._local_gradients = agent._apply_flat_gradients = None  # MPI agents never share (see _architecture_key)


def _index_of(state, variable) -> int:
    """Where ``variable`` (a Keras or TensorFlow variable) is in a list from :func:`_state_of`."""
    import tensorflow as tf

    target = variable if isinstance(variable, tf.Variable) else variable.value
    for index, candidate in enumerate(state):
        if candidate is target:
            return index
    raise RuntimeError(f"Internal error: {variable!r} is not among the variables a compiled call copies.")


class _Compiled:
    """One architecture's traced functions and the object (an agent or a template) whose variables they use.

    A template's functions are traced and first run on a background thread (:meth:`start`): that
    is ~1 s of a first build, and it overlaps with what comes next (the first cycle's gathering,
    or the learner reading the next cell). Every call through the template :meth:`wait`\ s for it.
    """

    def __init__(self, host):
        import threading

        self.host = host
        self._traces = 0  # how often the compiled update was traced (a test checks it stays 1)
        self.lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._error = None
        self.holder = None  # the agent whose state the template's variables hold (see _attach_through_template)

    @property
    def traces(self) -> int:
        self.wait()
        return self._traces

    def count_trace(self):
        self._traces += 1

    def start(self, work):
        """Run ``work()`` on a background thread; :meth:`wait` returns when it has."""
        import threading

        self._done.clear()

        def run():
            try:
                work()
            except BaseException as error:  # raised again, with its traceback, in the thread that waits
                self._error = error
            finally:
                self._done.set()

        # Not a daemon: the interpreter lets the tracing finish before it exits, instead of
        # tearing TensorFlow down under a running thread.
        threading.Thread(target=run, name="dexterity_nb: tracing the update", daemon=False).start()

    def wait(self):
        """Block until the background tracing has finished; re-raise what it raised."""
        if not self._done.is_set():
            self._done.wait()
        if self._error is not None:
            raise RuntimeError("Tracing this architecture's compiled update failed (see the error above); agents of "
                               "this architecture cannot train. Fix the model builder, re-run its cell, and build the "
                               "agent again.") from self._error


def _compile(host, template: bool = False):
    """Trace the compiled functions over ``host``'s networks, optimizer and settings; run them once.

    ``template``: the host is a :class:`_Template`. It keeps no backup of its own (each agent keeps
    its own, see :func:`_attach_through_template`); and after an eager check on the calling thread
    that one minibatch's loss reaches every trainable weight (what tracing would raise, raised
    here, before any work), tracing and the first run go to a background thread.
    """
    import tensorflow as tf

    from dexterity_nb.agent import objectives

    compiled = _Compiled(host)
    agent = host
    observation_shape = agent.env.observation_space.shape
    policy, value, distribution = agent.policy, agent.value, agent.distribution
    variables, optimizer = agent._variables, agent.optimizer
    recurrent, policy_memory = agent.recurrent, agent._policy_memory_size
    settings = agent._graph_settings
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
        # Both losses and a select, not tf.cond: a cond and its gradient take ~0.2 s more to trace, and
        # the unselected loss gets a zero gradient, so the step is the same.
        value_loss = tf.where(
            settings["value_clip"] > 0,
            objectives.value_loss(predicted_values, returns, old_values, settings["value_clip"], mask),
            objectives.value_loss(predicted_values, returns, mask=mask),
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
        compiled.count_trace()  # runs only while tracing
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
    saved_state = [] if template else list(variables) + list(optimizer.variables)
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

    def assign_all(sources, targets):
        """Assign each source variable to its target, in one call (variables as arguments: traced once per list)."""
        for source, target in zip(sources, targets):
            target.assign(source)

    compiled.optimize, compiled.local_gradients, compiled.apply_flat_gradients = optimize, local_gradients, apply_flat_gradients
    compiled.back_up_and_value, compiled.restore = back_up_and_value, restore
    compiled.copy = tf.function(assign_all, autograph=False)
    agent._optimize, agent._back_up_and_value, agent._restore_weights = optimize, back_up_and_value, restore
    if template:
        data, minibatches = dummy_batch(agent)
        with random_streams_kept():  # a training-mode layer (dropout) may draw
            minibatch_gradients(data, minibatches[0, 0])  # eagerly: gradients_of raises for a weight the loss never reaches
        compiled.start(lambda: (compile_now(agent), _trace_copies(compiled)))
    else:
        compile_now(agent)
    return compiled


def _trace_copies(compiled):
    """Trace and first run ``copy`` for the five kinds of call agents make (see
    _attach_through_template), so that an agent's first cycle prepares nothing.

    TensorFlow traces ``copy`` again for a new number of variables, a new pattern of trainable
    flags, or a variable passed twice: so the calls go to and from scratch variables with an
    agent's flags (its backups are all non-trainable). Through ``get_concrete_function``, as the
    agents call it: TensorFlow then does not count these traces as the frequent retracing it warns
    about (five traces of one function in a row would be, by its rule).
    """
    import tensorflow as tf

    state = _state_of(compiled.host)
    learned = len(state) - len(_SETTINGS)
    like_an_agent = [tf.Variable(variable, trainable=variable.trainable) for variable in state]
    like_its_backups = [tf.Variable(variable, trainable=False) for variable in state[:learned]]
    rate = _index_of(state, compiled.host.optimizer.learning_rate)
    settings = [rate, *range(learned, len(state))]
    for sources, targets in [
        (like_an_agent, state),  # an agent's state in, before a call
        (state[:learned], like_an_agent[:learned]),  # and back out after an update
        (like_an_agent[:learned], like_its_backups),  # an agent's backup
        (like_its_backups, like_an_agent[:learned]),  # and an unfinished cycle undone
        ([like_an_agent[index] for index in settings], [state[index] for index in settings]),  # settings alone
    ]:
        compiled.copy.get_concrete_function(sources, targets)(sources, targets)


def compile_now(agent):
    """Trace and run every compiled function once, on dummy data, and undo the update.

    A network or distribution that cannot be trained fails here; and the one-time costs (tracing,
    TensorFlow's first-run graph optimisation, ~1 s) are paid once per architecture, not in the
    middle of a drill's update. ``agent`` is the host of the functions: a template (then this runs
    on a background thread, see :class:`_Compiled`), or an agent whose functions are its own.
    """
    data, minibatches = dummy_batch(agent)
    agent._sync_graph_settings(agent.learning_rate)
    if agent.recurrent:
        observations, memories = data[0], data[3]
        agent._back_up_and_value(observations[:, 0], memories)
        # Traced (which checks every weight gets a gradient) but not run: XLA compiles per shape,
        # and this dummy shape is never used again.
        agent._optimize.get_concrete_function(data, minibatches)
    else:
        agent._back_up_and_value(data[0])
        agent._optimize(data, minibatches)
    agent._restore_weights()


def dummy_batch(agent):
    """``(data, minibatches)`` for ``agent._optimize``: one sample (one chunk if recurrent) of zeros, one minibatch."""
    space = agent.distribution.action_space
    discrete = isinstance(space, gymnasium.spaces.Discrete)
    steps = (1, agent.chunk_length) if agent.recurrent else (1,)  # one chunk, or one step
    observations = np.zeros((*steps, *agent.env.observation_space.shape), dtype=np.float32)
    actions = np.zeros((*steps, *space.shape), dtype=np.int64 if discrete else np.float32)
    if discrete:
        actions += space.start
    zeros = np.zeros(steps, dtype=np.float32)
    minibatches = np.zeros((1, 1, 1), dtype=np.int32)
    if agent.recurrent:
        memories = np.zeros((1, agent.memory_size), dtype=np.float32)
        return (observations, zeros, np.ones(steps, dtype=np.float32), memories, actions, zeros, zeros, zeros, zeros,
                zeros + 1), minibatches
    return (observations, actions, zeros, zeros, zeros, zeros, zeros + 1), minibatches


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
