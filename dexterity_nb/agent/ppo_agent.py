"""``PPOAgent``: proximal policy optimisation (Schulman et al., 2017) in cycles.

A *cycle* has two phases:

1. **gather**: every worker plays ``horizon`` steps of the current policy (see ``gather.py``);
   with curiosity, a bonus for novel states joins the rewards (see ``curiosity.py``);
2. **optimise**: ``epochs`` passes over all workers' experience in shuffled minibatches of
   ``batch_size``, each minibatch one gradient step on

       L = L^CLIP + c_value · L^V − c_entropy · H[π]

   (the terms are in ``objectives.py``), with the gradient's global norm clipped.

``drill(n, epochs, batch_size)`` runs n more cycles and prints one line after each.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
import time
from dataclasses import dataclass

import gymnasium
import numpy as np

from dexterity_nb.agent.callbacks import Callback, CycleLogger
from dexterity_nb.agent.gather import Gatherer, GathererError, Rollout, Trajectories, check_gatherer_class
from dexterity_nb.agent.update import UPDATE_METRICS
from dexterity_nb.common.mpi import local_batch_size, resolve_communicator, split_workers
from dexterity_nb.common.policies import get_distribution
from dexterity_nb.common.quiet_import import first_xla_compilation_quietly
from dexterity_nb.common.seeding import seed_global_streams
from dexterity_nb.common.wrappers import TransformedEnv, make_env

__all__ = ["PPOAgent", "EvaluationResult", "NonFiniteLossError"]




class NonFiniteLossError(RuntimeError):
    """The loss or its gradient became NaN or infinite; the agent was rolled back to its last good state."""


@dataclass
class EvaluationResult:
    """Returns and lengths of evaluation episodes, in the task's original reward."""

    returns: np.ndarray
    lengths: np.ndarray
    deterministic: bool = True

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    def __repr__(self):
        kind = "deterministic" if self.deterministic else "stochastic"
        return (
            f"<EvaluationResult: {len(self.returns)} {kind} episodes, return {np.mean(self.returns):.2f} ± "
            f"{np.std(self.returns):.2f} (min {np.min(self.returns):.2f}, max {np.max(self.returns):.2f}), "
            f"length {np.mean(self.lengths):.1f}>"
        )


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def _number_in(name, value, low, high, low_inclusive=True):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if value < low or value > high or (not low_inclusive and value == low):
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"`{name}` must be in {bracket}{low}, {high}], got {value!r}.")
    return float(value)


# The numeric hyperparameters: (low, high, low included?, None allowed?). Checked at construction
# and again at every drill, since they may be changed in between (agent.clip = 0.1).
_SETTINGS = {
    "learning_rate": (0.0, 10.0, False, False),
    "discount": (0.0, 1.0, True, False),
    "lam": (0.0, 1.0, True, False),
    "clip": (0.0, 10.0, False, False),
    "c_entropy": (0.0, 100.0, True, False),
    "c_value": (0.0, 100.0, True, False),
    "gradient_clipping": (0.0, math.inf, False, True),  # None: no clipping
    "value_clip": (0.0, math.inf, False, True),  # None: off
    "behaviour_weight_bound": (0.0, 1000.0, False, False),
}


def _checked_setting(name, value, shown_name=None):
    low, high, low_inclusive, may_be_none = _SETTINGS[name]
    if value is None and may_be_none:
        return None
    return _number_in(shown_name or name, value, low, high, low_inclusive)


def _checked_chunk_length(chunk_length, recurrent, horizon):
    """``chunk_length`` of a recurrent agent (default 16, at most the horizon); ``None`` for a feed-forward one."""
    if not recurrent:
        if chunk_length is not None:
            raise ValueError(f"`chunk_length` ({chunk_length!r}) is the training sequence length of recurrent networks; "
                             'this agent\'s are feed-forward. Drop it, or use get_model_builder("simple", "gru").')
        return None
    if chunk_length is None:
        return min(16, horizon)
    length = _positive_int("chunk_length", chunk_length)
    if length > horizon:
        raise ValueError(f"`chunk_length` ({length}) is longer than the horizon ({horizon}): a training sequence cannot "
                         f"be longer than what a worker gathers in a cycle. Use at most {horizon}.")
    return length


def _checked_schedule(schedule):
    if not (schedule is None or (isinstance(schedule, str) and schedule == "linear") or callable(schedule)):
        raise ValueError(f'`lr_schedule` must be None, "linear" or a function progress -> factor; got {schedule!r}.')
    return schedule


class PPOAgent:
    """A PPO agent: policy and value networks, workers that gather, and the update.

    Args:
        model_builder: from :func:`dexterity_nb.models.get_model_builder`; builds the networks.
        env: from :func:`dexterity_nb.common.wrappers.make_env` (a gymnasium id or env also works,
            without transformers). Each worker gets its own copy.
        horizon: steps each worker gathers per cycle. Typical: 32–2048.
        workers: parallel environment copies. A cycle gathers ``horizon × workers`` frames.
        learning_rate: Adam's step size α. Typical: 1e-4–3e-3.
        discount: γ, how much future rewards count. Typical: 0.95–0.999.
        lam: λ of GAE: 0 trusts the value estimate (low variance, biased), 1 the observed
            returns (unbiased, high variance). Typical: 0.8–0.98.
        clip: ε, how far the probability ratio may move before the surrogate stops rewarding it.
            Typical: 0.1–0.3.
        c_entropy: weight of the entropy bonus; higher keeps exploring longer. Typical: 0–0.01.
        c_value: weight of the value loss. Typical: 0.5–1.
        gradient_clipping: largest global norm of the gradient (``None``: no clipping). Typical: 0.5.
        lr_schedule: ``None`` (constant), ``"linear"`` (from ``learning_rate`` down towards 0 over
            the cycles of each ``drill`` call), or a function ``progress -> factor`` with progress
            going from 0 to 1 over a drill.
        distribution: ``None`` (chosen from the action space), a name (``"categorical"``,
            ``"gaussian"``, ``"beta"``), a Distribution class or instance.
        seed: makes drills reproducible on the same machine (same history twice). Also seeds
            Python's ``random``, NumPy's global stream and Keras's global seed, but not
            TensorFlow's (nothing here draws from it, and setting it clears TensorFlow's caches).
        value_clip: if set, value updates move at most this far per cycle (off by default).
        verbose: print set-up messages.
        communicator: ``None`` (MPI under ``mpirun -n K>1``, else one process), or a
            :class:`dexterity_nb.common.mpi.Communicator` / ``SingleProcess``. With K processes, each
            gathers for its share of ``workers`` and computes gradients on ``batch_size / K`` samples
            of every minibatch; only rank 0 prints, runs callbacks and saves (see ``common/mpi.py``).
        chunk_length: for recurrent networks (model types "rnn", "gru", "lstm") only: training cuts
            each worker's horizon into sequences of this many steps, and gradients flow back through
            at most that many (truncated back-propagation through time; ``agent/sequences.py``).
            Longer remembers further back but trains slower. Default 16; typical 8–64, at most ``horizon``.
        behaviour_weight_bound: c̄, the largest weight π_old(a|s)/μ(a|s) a sample gets when a custom
            gatherer acted by its own policy μ (see "The objective with a custom gatherer" below).
            Default 1, as V-trace's ρ̄.
        intrinsic: curiosity, a bonus added to the task's reward for novel states: ``None`` (off),
            ``"rnd"`` (Random Network Distillation), ``"counts"`` (a count-based bonus), or an
            :class:`~dexterity_nb.agent.curiosity.IntrinsicReward` subclass or instance (its
            ``weight`` is β). The history's returns stay the task's; ``intrinsic_return`` is the
            bonus's (see ``agent/curiosity.py``).

    **The objective with a custom gatherer.** A gatherer that overrides ``select_action`` may act
    by another policy μ (ε-greedy) and returns log μ(a|s). The agent then computes log π_old(a|s)
    itself and uses the decoupled objective (Hilton, Cobbe and Schulman, 2021): the ratio
    π_θ/π_old is clipped around the policy that the trust region is centred on, and each sample is
    weighted by min(π_old/μ, c̄), which corrects for μ having chosen the action. With the default
    gatherer μ = π_old, every weight is 1 and the loss is plain PPO's. The history reports
    ``behaviour_weight_mean`` and ``behaviour_weight_max`` (π_old/μ before truncation).

    A recurrent agent has a *memory* (its networks' hidden states, ``memory_size`` numbers per
    worker), wiped where an episode begins. ``evaluate`` handles it; ``act`` carries it from call
    to call: call ``agent.reset_memory()`` when a new episode starts.
    """

    def __init__(self, model_builder, env, horizon: int = 512, workers: int = 8, learning_rate: float = 1e-3,
                 discount: float = 0.99, lam: float = 0.95, clip: float = 0.2, c_entropy: float = 0.01,
                 c_value: float = 0.5, gradient_clipping: float | None = 0.5, lr_schedule=None,
                 distribution=None, seed: int | None = None, value_clip: float | None = None, verbose: bool = True,
                 communicator=None, chunk_length: int | None = None, behaviour_weight_bound: float = 1.0,
                 intrinsic=None):
        # Every argument is checked before anything is built.
        self.horizon = _positive_int("horizon", horizon)
        self.workers = _positive_int("workers", workers)
        self.learning_rate = _checked_setting("learning_rate", learning_rate)
        self.discount = _checked_setting("discount", discount)
        self.lam = _checked_setting("lam", lam)
        self.clip = _checked_setting("clip", clip)
        self.c_entropy = _checked_setting("c_entropy", c_entropy)
        self.c_value = _checked_setting("c_value", c_value)
        self.gradient_clipping = _checked_setting("gradient_clipping", gradient_clipping)
        self.value_clip = _checked_setting("value_clip", value_clip)
        self.behaviour_weight_bound = _checked_setting("behaviour_weight_bound", behaviour_weight_bound)
        self.lr_schedule = _checked_schedule(lr_schedule)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32):
            raise ValueError(f"`seed` must be None or an int in [0, 2**32 − 1] (what NumPy and TensorFlow accept), got {seed!r}.")
        self.seed = None if seed is None else int(seed)
        _check_model_builder(model_builder)
        self.intrinsic = _checked_intrinsic(intrinsic)
        if not isinstance(env, TransformedEnv):
            env = make_env(env)
        _check_cycle_fits_in_memory(self.horizon, self.workers, env.observation_space)
        self.env = env
        self.model_builder = model_builder
        self.distribution = get_distribution(env.action_space, distribution)
        self.communicator = resolve_communicator(communicator)
        # This process's workers: global ids first_worker … first_worker + local_workers − 1.
        self._first_worker, self._local_workers = split_workers(self.workers, self.communicator.size, self.communicator.rank)
        self.transformers = [copy.deepcopy(transformer) for transformer in env.transformers]
        for transformer in self.transformers:
            transformer.set_discount(self.discount)  # e.g. reward normalisation tracks returns with the agent's γ
            transformer.setup(env.observation_space, self._local_workers)

        from dexterity_nb.common.quiet_import import keras  # TensorFlow loads here, not at package import

        if self.seed is not None:
            seed_global_streams(self.seed)
        seeds = np.random.SeedSequence(self.seed)
        workers_seed, shuffle_seed, self._evaluation_seed, act_seed = seeds.spawn(4)
        if self.communicator.size > 1:  # each rank shuffles its own samples with its own stream
            shuffle_seed = shuffle_seed.spawn(self.communicator.size)[self.communicator.rank]
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._act_rng = np.random.default_rng(act_seed)
        self.distribution.action_space.seed(int(seeds.generate_state(1)[0]))

        self.policy, self.value = model_builder(env.observation_space, self.distribution)
        self._check_networks()
        self.chunk_length = _checked_chunk_length(chunk_length, self.recurrent, self.horizon)
        self._variables = _unique_variables(self.policy.trainable_variables + self.value.trainable_variables)
        self.optimizer = keras.optimizers.Adam(self.learning_rate, epsilon=1e-5)
        self.optimizer.build(self._variables)
        if self.communicator.size > 1:  # start from rank 0's weights (equal anyway with a seed)
            for variable, value in zip(self._variables, self.communicator.broadcast_arrays([v.numpy() for v in self._variables])):
                variable.assign(value)
        from dexterity_nb.agent.update import build_compiled_functions

        build_compiled_functions(self)
        self._act_memory = self.initial_memory(1)
        self.intrinsic_critic = None
        if self.intrinsic is not None:
            self._set_up_intrinsic()

        self.gatherer_class = Gatherer
        self.rollout = Rollout(env.make_worker_env, self._local_workers, Gatherer, self.distribution, self.transformers,
                               workers_seed, first_worker_id=self._first_worker, memory_size=self.memory_size)
        self.cycle = 0
        self.history: list[dict] = []
        self.drill_end_cycle = 0
        self.drill_outcome = None
        self._stop_requested = threading.Event()
        self._evaluation_env = None
        if verbose and self.communicator.is_root:
            names = ", ".join(type(t).__name__ for t in self.transformers)
            print(f"Using [{names}] for preprocessing." if names else "Using no transformers for preprocessing.")

    # ------------------------------------------------------------------ set-up
    def _check_networks(self):
        """Call both networks once; find out whether they are recurrent and how much memory they carry."""
        from dexterity_nb.models import RECURRENT_MODEL_TYPES

        def inputs(model):  # a subclassed Keras model may not know its inputs: one, the observations
            return len(getattr(model, "inputs", None) or [None])

        self.recurrent = inputs(self.policy) == 3
        model_type = getattr(self.model_builder, "model_type", None)
        expected = self.recurrent if model_type is None else model_type in RECURRENT_MODEL_TYPES
        if expected != self.recurrent or (self.recurrent and inputs(self.value) != 3):
            raise ValueError(
                f"The model builder {self.model_builder!r} is of type {getattr(self.model_builder, 'model_type', None)!r} "
                f"but its policy takes {inputs(self.policy)} input(s) and its value network "
                f"{inputs(self.value)}. Recurrent types ({', '.join(RECURRENT_MODEL_TYPES)}) take [observations, "
                "resets, state] and return their new state last (see dexterity_nb.models); other types take the "
                "observations only."
            )
        observation = np.zeros((1, *self.env.observation_space.shape), dtype=np.float32)
        if self.recurrent:
            self._policy_memory_size = int(self.policy.inputs[2].shape[-1])
            value_memory = int(self.value.inputs[2].shape[-1])
            steps, resets = observation[:, None], np.zeros((1, 1), dtype=np.float32)
            *outputs, _ = self.policy([steps, resets, np.zeros((1, self._policy_memory_size), dtype=np.float32)])
            value = np.asarray(self.value([steps, resets, np.zeros((1, value_memory), dtype=np.float32)])[0])
            self.memory_size = self._policy_memory_size + value_memory
        else:
            self._policy_memory_size = self.memory_size = 0
            outputs = self.policy(observation)
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            value = np.asarray(self.value(observation))
        if len(outputs) != self.distribution.parameter_count:
            raise ValueError(
                f"The policy network returns {len(outputs)} output(s); {self.distribution!r} needs "
                f"{self.distribution.parameter_count}. Build its heads with distribution.build_heads(features)."
            )
        if value.shape != (1, 1):
            raise ValueError(f"The value network must return shape (batch, 1); it returned {value.shape}.")

    def initial_memory(self, rows: int = 1):
        """The memory at an episode's start (zeros, shape ``(rows, memory_size)``); ``None`` if not recurrent."""
        return np.zeros((rows, self.memory_size), dtype=np.float32) if self.recurrent else None

    def reset_memory(self):
        """Forget what ``act`` remembers (a recurrent agent's memory): call it when a new episode starts."""
        self._act_memory = self.initial_memory(1)

    # ------------------------------------------------------------------ public API
    def assign_gatherer(self, gatherer_class):
        """Use ``gatherer_class`` (a :class:`Gatherer` subclass) for every worker from now on."""
        self.rollout.assign(check_gatherer_class(gatherer_class))  # raises with the old gatherers in place
        self.gatherer_class = gatherer_class

    def stop_drill(self):
        """Ask the running drill to end after its current cycle (safe from any thread or callback)."""
        self._stop_requested.set()

    @property
    def trace_count(self) -> int:
        """How often the compiled update of this agent's architecture was traced in this process (1: once)."""
        return self._compiled.traces

    @property
    def frames(self) -> int:
        return self.history[-1]["frames"] if self.history else 0

    def describe_drill(self) -> str:
        return f"Drill started using {self.communicator.size} processes for {self.workers} workers."

    def drill(self, n: int, epochs: int, batch_size: int, callbacks=None, verbose: bool = True) -> list[dict]:
        """Run ``n`` more cycles of gathering and optimisation; return the history.

        Args:
            n: cycles to run now; calling ``drill`` again continues the count.
            epochs: passes over each cycle's experience. Typical: 3–20.
            batch_size: samples per gradient step, at most ``horizon × workers``. Typical: 64–512.
            callbacks: :class:`~dexterity_nb.agent.callbacks.Callback` instances (e.g. the live
                dashboard of ``dexterity_nb.widgets``).
            verbose: print the per-cycle line.

        The drill ends early when ``stop_drill()`` is called (after the running cycle) or on
        KeyboardInterrupt (the unfinished cycle is undone). ``drill_outcome`` says which.
        """
        n = _positive_int("n", n)
        for name in _SETTINGS:  # they may have been changed since construction (agent.clip = 0.1)
            _checked_setting(name, getattr(self, name), f"agent.{name}")
        _checked_schedule(self.lr_schedule)
        for transformer in self.transformers:
            transformer.set_discount(self.discount)
        if self.intrinsic is not None:  # β may have been changed since construction (agent.intrinsic.weight = 2)
            weight = self.intrinsic.weight
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating)) or not 0 <= weight < math.inf:
                raise ValueError(f"`agent.intrinsic.weight` (β) must be a finite number ≥ 0, got {weight!r}.")
        epochs = _positive_int("epochs", epochs)
        batch_size = _positive_int("batch_size", batch_size)
        samples = self.horizon * self.workers
        if batch_size > samples:
            raise ValueError(
                f"`batch_size` ({batch_size}) is larger than one cycle's samples (horizon × workers = "
                f"{self.horizon} × {self.workers} = {samples}); use at most {samples}."
            )
        if self.recurrent and batch_size < self.chunk_length:
            raise ValueError(
                f"`batch_size` ({batch_size}) is smaller than one training sequence (chunk_length = {self.chunk_length}); "
                f"a recurrent agent's minibatch is ⌊batch_size / chunk_length⌋ whole chunks. Use a batch_size of at "
                f"least {self.chunk_length}, ideally a multiple of it."
            )
        if self.recurrent and self.communicator.size > 1:
            self._check_sequences_split_evenly(batch_size)
        if self.communicator.size > 1 and not self.recurrent:
            share = local_batch_size(batch_size, self.communicator.size)
            smallest = self.horizon * (self.workers // self.communicator.size)
            if share > smallest:
                raise ValueError(
                    f"`batch_size` / processes ({batch_size} / {self.communicator.size} = {share}) is larger than the "
                    f"samples of the process with fewest workers (horizon × {self.workers // self.communicator.size} = "
                    f"{smallest}); use batch_size at most {smallest * self.communicator.size}."
                )
        callbacks = _checked_callbacks(callbacks)
        learning_rates = [self._learning_rate_for(index, n) for index in range(n)]  # a bad schedule fails now
        if not self.communicator.is_root:
            callbacks, verbose = [], False  # with MPI only rank 0 prints, draws and runs callbacks
        if verbose and not any(getattr(callback, "replaces_text_log", False) for callback in callbacks):
            callbacks.insert(0, CycleLogger())  # a live dashboard shows the same numbers itself

        first_cycle = self.cycle
        self.drill_end_cycle = first_cycle + n
        self.drill_outcome = None
        self._stop_requested.clear()
        # With MPI, Ctrl-C becomes "stop after this cycle" on every rank; alone, a KeyboardInterrupt.
        with self.communicator.interrupts_stop(self.stop_drill):
            try:
                for callback in callbacks:  # inside the guard: Ctrl-C here still ends the drill cleanly
                    callback.on_drill_begin(self)
                for index in range(n):
                    snapshot = self._snapshot()
                    try:
                        stats = self._run_cycle(epochs, batch_size, learning_rates[index], callbacks)
                    except BaseException:
                        self._restore(snapshot)
                        raise
                    for callback in callbacks:
                        callback.on_cycle_end(self, stats)
                    # With MPI, rank 0's flag decides, so every rank stops after the same cycle.
                    if self.communicator.stop_requested(self._stop_requested.is_set()) and self.cycle < self.drill_end_cycle:
                        self.drill_outcome = "stopped"
                        break
                else:
                    self.drill_outcome = "completed"
            except KeyboardInterrupt:
                self.drill_outcome = "interrupted"
                print(f"Drill interrupted: the unfinished cycle was undone; the agent is at cycle {self.cycle}. "
                      "Call drill() again to continue.", flush=True)
            except BaseException:
                self.drill_outcome = "failed"
                for callback in callbacks:
                    callback.on_drill_end(self, self.history)
                raise
        for callback in callbacks:
            callback.on_drill_end(self, self.history)
        return self.history

    def _check_sequences_split_evenly(self, batch_size):
        """Under MPI, a recurrent minibatch is split into equal shares of whole, unpadded chunks.

        Then every rank's loss is a mean over equally many steps, and the mean of the ranks'
        gradients is the gradient of the whole minibatch, as for feed-forward agents.
        """
        size, length = self.communicator.size, self.chunk_length
        if self.horizon % length:
            raise ValueError(f"Under MPI, `horizon` ({self.horizon}) must be a multiple of `chunk_length` ({length}), so "
                             f"that no training sequence is padded and every process's share weighs the same. Use e.g. "
                             f"chunk_length={math.gcd(self.horizon, length)} or horizon={self.horizon // length * length or length}.")
        chunks = batch_size // length
        if chunks < size or chunks % size:
            raise ValueError(f"Under MPI with {size} processes, a recurrent minibatch of batch_size // chunk_length = "
                             f"{batch_size} // {length} = {chunks} chunks cannot be split evenly; use a batch_size that is a "
                             f"multiple of chunk_length × processes = {length * size}.")
        smallest = (self.workers // size) * (self.horizon // length)
        if chunks // size > smallest:
            raise ValueError(f"`batch_size` / processes asks {chunks // size} chunks of each process per minibatch, more than "
                             f"the process with fewest workers has ({smallest}); use batch_size at most {smallest * size * length}.")

    def evaluate(self, n_episodes: int = 10, deterministic: bool = True, max_steps: int | None = None) -> EvaluationResult:
        """Play ``n_episodes`` with frozen transformer statistics; report original returns.

        ``max_steps`` ends an episode after that many steps; it is required for an env without a
        time limit, whose episodes might otherwise never end.
        """
        n_episodes = _positive_int("n_episodes", n_episodes)
        max_steps = None if max_steps is None else _positive_int("max_steps", max_steps)
        if self._evaluation_env is None:
            self._evaluation_env = self.env.make_worker_env()
        if max_steps is None and not _has_time_limit(self._evaluation_env):
            raise ValueError(
                f"{self._evaluation_env} has no time limit, so an evaluation episode might never end. Pass "
                "max_steps (e.g. agent.evaluate(max_steps=1000)), or give the env a limit "
                "(gymnasium.wrappers.TimeLimit, or max_episode_steps=... when registering it)."
            )
        self._policy_forward_refresh()  # the weights may have been set from outside since the last cycle
        env = self._evaluation_env
        rng = np.random.default_rng(self._evaluation_seed.spawn(1)[0])
        returns, lengths = [], []
        for _ in range(n_episodes):
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            total, length, done, memory = 0.0, 0, False, self.initial_memory(1)
            while not done:
                action, memory = self._choose(observation, deterministic, rng, memory)
                observation, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated or (max_steps is not None and length >= max_steps)
            returns.append(total)
            lengths.append(length)
        return EvaluationResult(np.array(returns), np.array(lengths), deterministic)

    def act(self, observation, deterministic: bool = False):
        """The action for one raw observation (transformer statistics are not updated).

        A recurrent agent remembers the observations of earlier calls: call :meth:`reset_memory`
        when a new episode starts (``evaluate`` and the episode player do).
        """
        self._policy_forward_refresh()  # ~0.2 ms: the weights may have been set from outside (set_weights, a copy)
        action, self._act_memory = self._choose(observation, deterministic, self._act_rng, self._act_memory)
        return action

    def _choose(self, observation, deterministic, rng, memory=None):
        """``(action, memory after it)`` for one raw observation; the memory is ``None`` if not recurrent."""
        states = np.asarray(observation, dtype=np.float32)[None]
        if states.shape[1:] != self.env.observation_space.shape:
            raise ValueError(
                f"act takes one observation of shape {self.env.observation_space.shape}; got shape {states.shape[1:]}. "
                "For several, call it once per observation."
            )
        for transformer in self.transformers:
            states = transformer.transform_state(states, update=False)
        if self.recurrent:
            parameters, memory = self._policy_forward(states, memory)
        else:
            parameters = self._policy_forward(states)
        actions = self.distribution.deterministic(*parameters) if deterministic else self.distribution.sample(*parameters, rng=rng)
        return self.distribution.env_actions(actions)[0], memory

    def save(self, path):
        """Write the agent to one file at ``path``, atomically (see ``dexterity_nb.agent.checkpoint``).

        With MPI, only rank 0 writes (the weights are the same on every rank); on the other ranks
        this does nothing and returns ``None``, so one script serves all ranks.
        """
        from dexterity_nb.agent.checkpoint import save_agent

        if not self.communicator.is_root:
            return None

        return save_agent(self, path)

    @classmethod
    def load(cls, path, env=None, gatherer=None, lr_schedule=None, verbose: bool = False) -> "PPOAgent":
        """Rebuild a saved agent; it continues drilling from its saved cycle.

        Weights, optimizer state, transformer statistics, hyperparameters, history, gatherer and
        random streams are restored; an environment's internal state is not saved, so the workers
        start fresh episodes.

        The file is data and is trusted as data only: it names its transformers, distribution,
        gatherer and model builder by registered names, which resolve only in the registries the
        package and you filled in this process (``register_transformer``, ``register_distribution``,
        ``register_gatherer``, ``register_model_builder``); its env only by an id gymnasium already
        has registered here. A file is never a reason to import a module or run code. Anything the
        file names that is not registered here, or cannot hold, is a ``CheckpointError`` that says
        what to register or which of these arguments to pass:

        Args:
            path: the file written by ``save`` (or a folder holding exactly one ``.npz``).
            env: replaces the saved env, e.g. one made from an instance, or from an id of a module you
                imported yourself. It must have the saved transformers (same classes and configs, in
                order), whose saved statistics it takes over; a plain gymnasium env or id is fine for
                an agent saved without transformers.
            gatherer: replaces the saved gatherer class (one defined in another notebook, or not
                registered here).
            lr_schedule: the function of an agent saved with a custom ``lr_schedule`` (required then,
                since a file cannot hold a function); given for another file, it replaces the saved schedule.
            verbose: print set-up messages.

        A damaged or edited file raises ``CheckpointError`` naming the field or array, before
        anything is built.
        """
        from dexterity_nb.agent.checkpoint import load_agent

        return load_agent(cls, path, env=env, gatherer=gatherer, lr_schedule=lr_schedule, verbose=verbose)

    def hyperparameters(self) -> dict:
        """The constructor's hyperparameters, as saved with the agent.

        A custom ``lr_schedule`` function appears as ``"custom"``: a file cannot hold a function, so
        ``PPOAgent.load`` then asks for it (``lr_schedule=``) rather than falling back to another rate.
        """
        custom = self.lr_schedule is not None and not isinstance(self.lr_schedule, str)
        return {
            "horizon": self.horizon, "workers": self.workers, "learning_rate": self.learning_rate,
            "discount": self.discount, "lam": self.lam, "clip": self.clip, "c_entropy": self.c_entropy,
            "c_value": self.c_value, "gradient_clipping": self.gradient_clipping,
            "lr_schedule": "custom" if custom else self.lr_schedule,
            "seed": self.seed, "value_clip": self.value_clip, "chunk_length": self.chunk_length,
            "behaviour_weight_bound": self.behaviour_weight_bound,
        }

    def __repr__(self):
        return (f"<PPOAgent {self.env.spec.id if self.env.spec else self.env}: {self.workers} workers × {self.horizon} steps, "
                f"{self.distribution!r}, gatherer {self.gatherer_class.__name__}"
                f"{'' if self.intrinsic is None else f', curiosity {self.intrinsic!r}'}, {self.cycle} cycles drilled>")

    # ------------------------------------------------------------------ one cycle
    def _learning_rate_for(self, index, total):
        if self.lr_schedule is None:
            return self.learning_rate
        progress = index / total
        if self.lr_schedule == "linear":
            return self.learning_rate * (1.0 - progress)
        factor = self.lr_schedule(progress)
        if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)) or not (
            math.isfinite(factor) and 0 <= factor * self.learning_rate <= 10.0
        ):
            raise ValueError(
                f"`lr_schedule({progress:g})` returned {factor!r}; it must return a finite factor ≥ 0 "
                f"(the learning rate is learning_rate × factor = {self.learning_rate:g} × factor, at most 10): "
                "a negative rate would climb the loss instead of descending it."
            )
        return self.learning_rate * float(factor)

    def _run_cycle(self, epochs, batch_size, learning_rate, callbacks=()) -> dict:
        start = time.perf_counter()
        statistics_base = self.communicator.statistics_state(self.transformers)
        self._policy_forward_refresh()  # also picks up weights set from outside the drill (a callback, a copy)
        trajectories = self.rollout.gather(self._policy_forward, self.horizon)
        self.communicator.merge_statistics(self.transformers, statistics_base)  # with MPI: exact merge over ranks
        for callback in callbacks:
            callback.on_gather_end(self)
        gathered = time.perf_counter()
        intrinsic_rewards = self._intrinsic_rewards(trajectories) if self.intrinsic is not None else None
        metrics, updates = self._optimize_on(trajectories, epochs, batch_size, learning_rate, intrinsic_rewards)
        finished = time.perf_counter()
        self.cycle += 1
        previous = self.history[-1] if self.history else {"frames": 0, "updates": 0, "total_episodes": 0}
        # With MPI: all ranks' episodes, total frames, the slowest rank's times; the same entry on every rank.
        summary = self.communicator.combine_cycle({
            "episode_returns": trajectories.episode_returns, "episode_lengths": trajectories.episode_lengths,
            "frames": trajectories.frames, "gather_seconds": gathered - start, "optimize_seconds": finished - gathered,
            "seconds": finished - start,
            "behaviour_weight_sum": self._behaviour_ratio[0], "behaviour_weight_max": self._behaviour_ratio[1],
            "intrinsic_returns": [] if self.intrinsic is None else self.intrinsic.episode_returns,
        })
        returns, lengths = summary["episode_returns"], summary["episode_lengths"]
        stats = {
            "cycle": self.cycle,
            "mean_return": float(np.mean(returns)) if returns else math.nan,
            "mean_length": float(np.mean(lengths)) if lengths else math.nan,
            "episodes": len(returns),
            "episode_returns": [float(value) for value in returns],
            "episode_lengths": [int(value) for value in lengths],
            "total_episodes": previous["total_episodes"] + len(returns),
            "frames": previous["frames"] + summary["frames"],
            "updates": previous["updates"] + updates,
            **{key: value for key, value in metrics.items() if not key.startswith("intrinsic_")},  # UPDATE_METRICS, ...
            # How far the gatherer acted from the policy: π_old/μ over the cycle's samples (1 and 1 for the default gatherer).
            "behaviour_weight_mean": summary["behaviour_weight_sum"] / max(summary["frames"], 1),
            "behaviour_weight_max": summary["behaviour_weight_max"],
            **self._intrinsic_history(summary["intrinsic_returns"], metrics),
            "learning_rate": learning_rate,
            "gather_seconds": summary["gather_seconds"],
            "optimize_seconds": summary["optimize_seconds"],
            "seconds": summary["seconds"],
            "steps_per_second": summary["frames"] / max(summary["seconds"], 1e-9),
        }
        self.history.append(stats)
        return stats

    def _advantages(self, trajectories: Trajectories, bonus=None):
        """V(s_t), the advantages and the returns of a cycle, each ``(horizon, workers)``.

        V(s_t) and V(s_{t+1}) come from one value pass, which also backs up the weights. A
        recurrent value network takes one step from the memory recorded with each state.
        ``bonus``: an episodic intrinsic reward, added to the task's rewards.
        """
        from dexterity_nb.agent.objectives import generalized_advantage_estimates

        horizon, workers = trajectories.rewards.shape
        samples = horizon * workers
        both = np.concatenate([trajectories.observations, trajectories.next_observations])
        both = both.reshape(2 * samples, *trajectories.observations.shape[2:])  # all s_t, then all s_{t+1}
        if self.recurrent:
            memories = np.concatenate([trajectories.memories, trajectories.next_memories]).reshape(2 * samples, -1)
            both = self._back_up_and_value(both, memories).numpy()
        else:
            both = self._back_up_and_value(both).numpy()
        self._backup_is_fresh = True
        values = both[:samples].reshape(horizon, workers)
        next_values = both[samples:].reshape(horizon, workers)
        rewards = trajectories.rewards if bonus is None else trajectories.rewards + bonus
        advantages, returns = generalized_advantage_estimates(
            rewards, values, next_values, trajectories.terminated, trajectories.episode_ends, self.discount, self.lam,
        )
        return values, advantages, returns

    def _update_data(self, trajectories, values, advantages, returns, batch_size, old_log_probabilities=None,
                     weights=None):
        """The cycle's data as the compiled update takes it, its sample count, and samples per minibatch.

        Feed-forward: one sample per step, ``(horizon · workers, ...)``. Recurrent: one sample per
        chunk of ``chunk_length`` steps, ``(chunks, chunk_length, ...)``, with the chunk's reset and
        valid masks and the memory recorded at its first step; a minibatch is
        ⌊batch_size / chunk_length⌋ whole chunks.
        """
        from dexterity_nb.agent import sequences

        if old_log_probabilities is None:  # μ = π_old: the default gatherer
            old_log_probabilities = trajectories.log_probabilities
        if weights is None:
            weights = np.ones_like(trajectories.log_probabilities, dtype=np.float32)
        per_step = (trajectories.actions, old_log_probabilities.astype(np.float32), advantages.astype(np.float32),
                    returns.astype(np.float32), values.astype(np.float32), weights.astype(np.float32))
        if not self.recurrent:
            steps = trajectories.rewards.size
            flat = [array.reshape(steps, *array.shape[2:]) for array in (trajectories.observations, *per_step)]
            return tuple(flat), steps, batch_size
        chunks = sequences.cut_into_chunks(trajectories.episode_ends, self.chunk_length)
        data = (
            sequences.gather_chunks(trajectories.observations, chunks),
            chunks.reset.astype(np.float32), chunks.valid.astype(np.float32),
            sequences.chunk_start_states(trajectories.memories, chunks),
            *(sequences.gather_chunks(array, chunks) for array in per_step),
        )
        return data, chunks.count, batch_size // self.chunk_length

    def _optimize_on(self, trajectories, epochs, batch_size, learning_rate, intrinsic_rewards=None):
        """Optimise on one cycle's data; returns ({metric name: value}, minibatches applied).

        The metrics are the :data:`UPDATE_METRICS` (means over the applied minibatches), the
        value diagnostics of the estimates GAE used, before this update (see ``_value_diagnostics``),
        and with curiosity the ``intrinsic_`` metrics of its training.
        """
        episodic = self.intrinsic is not None and self.intrinsic.episodic
        values, advantages, returns = self._advantages(trajectories, intrinsic_rewards if episodic else None)
        diagnostics = self._value_diagnostics(values.reshape(-1), returns.reshape(-1))
        if self.intrinsic_critic is not None:  # a non-episodic bonus: A_t = A^task_t + A^i_t
            intrinsic_advantages, intrinsic_returns = self._intrinsic_advantages(trajectories, intrinsic_rewards)
            advantages = advantages + intrinsic_advantages
        old_log_probabilities, weights = self._behaviour_correction(trajectories)
        # samples and minibatch size in the update's units: steps, or a recurrent agent's chunks
        data, samples, per_minibatch = self._update_data(trajectories, values, advantages, returns, batch_size,
                                                         old_log_probabilities, weights)
        permutations = np.stack([self._shuffle_rng.permutation(samples) for _ in range(epochs)]).astype(np.int32)
        self._sync_graph_settings(learning_rate)
        if self.communicator.size == 1:
            batches = samples // per_minibatch  # per epoch; the last samples of each permutation sit this epoch out
            minibatches = permutations[:, :batches * per_minibatch].reshape(epochs, batches, per_minibatch)
            with first_xla_compilation_quietly() if self.recurrent else contextlib.nullcontext():
                metrics, completed, finite = self._optimize(data, minibatches)
        else:
            metrics, completed, finite = self._optimize_distributed(data, permutations, np.int32(per_minibatch))
        if not bool(finite):
            raise NonFiniteLossError(
                f"Cycle {self.cycle + 1}: the loss or its gradient became non-finite in minibatch {int(completed) + 1}. "
                f"The agent was restored to the end of cycle {self.cycle}. Try a lower learning_rate, check the "
                "environment's rewards and observations for nan/inf, or add a RewardNormalizationTransformer."
            )
        metrics = {**dict(zip(UPDATE_METRICS, (float(value) for value in np.asarray(metrics)))), **diagnostics}
        if self.intrinsic is not None:
            metrics.update(self._train_intrinsic(trajectories, epochs, batch_size, learning_rate,  # V_i: steps, not chunks
                                                 intrinsic_returns if self.intrinsic_critic is not None else None))
        return metrics, int(completed)

    def _behaviour_correction(self, trajectories):
        """``(log π_old(a|s), min(π_old/μ, c̄))`` of every gathered sample, each ``(horizon, workers)``.

        With the default gatherer μ = π_old, so the gathered log-probabilities are used as they are
        and every weight is 1 (exactly plain PPO). A gatherer that overrides ``select_action``
        returned log μ; log π_old is then computed here with the policy that gathered.
        """
        from dexterity_nb.agent.objectives import behaviour_weights

        behaviour = trajectories.log_probabilities
        if not self.rollout.custom_selection:
            self._behaviour_ratio = (float(behaviour.size), 1.0)  # Σ π_old/μ and its max
            return behaviour, np.ones_like(behaviour, dtype=np.float32)
        horizon, workers = behaviour.shape
        observations = trajectories.observations.reshape(horizon * workers, *trajectories.observations.shape[2:])
        actions = trajectories.actions.reshape(horizon * workers, *trajectories.actions.shape[2:])
        if self.recurrent:
            parameters, _ = self._policy_forward(observations, trajectories.memories.reshape(horizon * workers, -1))
        else:
            parameters = self._policy_forward(observations)
        old = np.asarray(self.distribution.log_probability(actions, *parameters), dtype=np.float64).reshape(horizon, workers)
        ratios = np.exp(old - behaviour)
        self._behaviour_ratio = (float(ratios.sum()), float(ratios.max()))
        return old.astype(np.float32), behaviour_weights(old, behaviour, self.behaviour_weight_bound)

    def _value_diagnostics(self, values, returns) -> dict:
        """``explained_variance`` and ``mean_value`` of the cycle's samples, over all MPI processes.

        ``values``: V(s_t) before the update (what GAE used); ``returns``: the value targets R_t.
        With K > 1 processes (each holding its own samples, maybe unequally many), the pooled
        moments come from two small Allreduces: first the means, then the squared deviations from
        those shared means, which keeps float32 sums away from cancellation.
        """
        from dexterity_nb.agent.objectives import explained_variance, explained_variance_from_variances

        values, returns = np.asarray(values, dtype=np.float64), np.asarray(returns, dtype=np.float64)
        if self.communicator.size == 1:
            return {"explained_variance": explained_variance(values, returns), "mean_value": float(np.mean(values))}
        columns = np.stack([returns, returns - values, values], axis=1)  # (samples, 3): R, R − V, V
        count = len(columns)
        # average() gives the mean over ranks of each rank's n_k·μ_k; dividing by the mean n_k gives
        # Σ n_k μ_k / Σ n_k, the mean over all samples.
        sums = np.concatenate([[count], count * columns.mean(axis=0)])
        pooled = self.communicator.average(np.ascontiguousarray(sums, dtype=np.float32)).astype(np.float64)
        means = pooled[1:] / pooled[0]
        squares = np.concatenate([count * ((columns - means) ** 2).mean(axis=0), [count * np.mean(returns**2)]])
        moments = self.communicator.average(np.ascontiguousarray(squares, dtype=np.float32)).astype(np.float64) / pooled[0]
        return_variance, error_variance, _, mean_squared_return = moments
        return {"explained_variance": explained_variance_from_variances(error_variance, return_variance, mean_squared_return),
                "mean_value": float(means[2])}

    def _optimize_distributed(self, data, permutations, batch_size):
        """``_optimize`` for K > 1 MPI processes: one Allreduce per minibatch, the same update on every rank.

        Each rank takes ``batch_size / K`` of its own samples per minibatch; its gradient and loss
        metrics travel in one contiguous float32 buffer through one Allreduce (mean over ranks);
        every rank then clips and applies that mean gradient, so the weights stay equal. Since each
        rank's loss is a mean over equally many samples, the mean of the ranks' gradients is the
        gradient over the whole minibatch. Advantages are normalised with the whole minibatch's
        mean and variance, which two small Allreduces per cycle give every rank before the first
        minibatch (:func:`~dexterity_nb.common.mpi.share_means`). All ranks run as many minibatches
        per epoch as the rank with the fewest workers.
        """
        import tensorflow as tf

        from dexterity_nb.common.mpi import minibatch_shares, share_means, share_squared_deviations

        size = self.communicator.size
        share = local_batch_size(int(batch_size), size)
        if self.recurrent:  # samples are whole chunks, all of chunk_length valid steps (drill checks it under MPI)
            batches_per_epoch = (self.workers // size) * (self.horizon // self.chunk_length) // share
            advantages = data[6]  # (chunks, chunk_length)
        else:
            batches_per_epoch = self.horizon * (self.workers // size) // share
            advantages = data[3]
        shares = minibatch_shares(advantages, permutations, share, batches_per_epoch)
        shares = shares.reshape(*shares.shape[:2], -1)  # (epochs, batches, this rank's steps of the minibatch)
        means = self.communicator.average(np.ascontiguousarray(share_means(shares), dtype=np.float32))
        variances = self.communicator.average(np.ascontiguousarray(share_squared_deviations(shares, means), dtype=np.float32))
        data = tuple(tf.constant(array) for array in data)
        # The loss metrics of minibatch_gradients travel in the buffer; the gradient norm is taken after the Allreduce.
        loss_metrics = len(UPDATE_METRICS) - 1
        metric_sums, completed = np.zeros(len(UPDATE_METRICS)), 0
        for epoch, permutation in enumerate(permutations):
            for batch in range(batches_per_epoch):
                indices = tf.constant(permutation[batch * share:(batch + 1) * share])
                moments = tf.constant([means[epoch, batch], variances[epoch, batch]], dtype=tf.float32)
                # [gradients, the loss metrics, loss]
                buffer = np.array(self._local_gradients(data, indices, moments), dtype=np.float32)
                self.communicator.average(buffer)
                if not np.all(np.isfinite(buffer)):  # the same verdict on every rank: the buffer is the same
                    return tf.constant(metric_sums / max(completed, 1), tf.float32), completed, False
                # The norm of the mean gradient (what is clipped), not the mean of the ranks' norms.
                norm = self._apply_flat_gradients(buffer[:-(loss_metrics + 1)])
                metric_sums += np.append(buffer[-(loss_metrics + 1):-1], float(norm))
                completed += 1
        return tf.constant(metric_sums / max(completed, 1), tf.float32), completed, True

    def _policy_forward_refresh(self):
        """Copy the policy's current weights into the NumPy mirror (if gathering uses one).

        Called before every use (a cycle's gathering, ``evaluate``, ``act``), not after updates,
        because weights can also change from outside: ``agent.policy.set_weights(...)``, a callback.
        """
        if hasattr(self._policy_forward, "refresh"):
            self._policy_forward.refresh()

    def _sync_graph_settings(self, learning_rate):
        """Copy the Python hyperparameters into the variables the compiled update reads (no retracing).

        Only changed values are assigned: each assignment is an eager TensorFlow call.
        """
        values = {
            "learning_rate": learning_rate, "clip": self.clip, "c_entropy": self.c_entropy, "c_value": self.c_value,
            "gradient_clipping": self.gradient_clipping if self.gradient_clipping is not None else 0.0,  # 0: no clipping
            "value_clip": self.value_clip if self.value_clip is not None else 0.0,
        }
        for name, value in values.items():
            if self._graph_setting_values.get(name) != value:
                target = self.optimizer.learning_rate if name == "learning_rate" else self._graph_settings[name]
                target.assign(value)
                self._graph_setting_values[name] = value

    # ------------------------------------------------------------------ curiosity (agent/curiosity.py)
    def _set_up_intrinsic(self):
        """Build the intrinsic reward (and V_i for a non-episodic one); equal on every MPI process."""
        from dexterity_nb.agent.curiosity import IntrinsicCritic
        from dexterity_nb.common.transformers import BaseTransformer

        # The bonus sees the observations the networks see. After a transformer that changes them (state
        # normalisation) the env's bounds no longer hold: the space it is given says "unbounded".
        space = self.env.observation_space
        if any(type(t).transform_state is not BaseTransformer.transform_state for t in self.transformers):
            space = gymnasium.spaces.Box(-np.inf, np.inf, space.shape, dtype=np.float32)
        self.intrinsic.setup(space, self.env.action_space, self._local_workers, self.communicator)
        if self.intrinsic.workers != self._local_workers:
            raise TypeError(f"{type(self.intrinsic).__name__}.setup must call super().setup(observation_space, "
                            "action_space, workers, communicator) first: the base class keeps per-worker returns there.")
        if not self.intrinsic.episodic:
            self.intrinsic_critic = IntrinsicCritic(self.env.observation_space, communicator=self.communicator)
        if self.communicator.size > 1:  # rank 0's random target, predictor and V_i on every rank
            state = self._intrinsic_state()
            names = sorted(state)
            self._set_intrinsic_state(dict(zip(names, self.communicator.broadcast_arrays([state[name] for name in names]))))

    def _intrinsic_state(self) -> dict:
        """Everything curiosity has learned, as named arrays: the bonus's, then V_i's (``value/…``)."""
        state = {f"reward/{name}": value for name, value in self.intrinsic.get_state().items()}
        if self.intrinsic_critic is not None:
            state.update({f"value/{name}": value for name, value in self.intrinsic_critic.get_state().items()})
        return state

    def _set_intrinsic_state(self, state):
        self.intrinsic.set_state({name[len("reward/"):]: value for name, value in state.items() if name.startswith("reward/")})
        if self.intrinsic_critic is not None:
            self.intrinsic_critic.set_state({name[len("value/"):]: value for name, value in state.items()
                                             if name.startswith("value/")})
        self.intrinsic.restart_episodes()

    def _intrinsic_rewards(self, trajectories):
        """r^i_t of the cycle, ``(horizon, workers)``; the bonus's statistics updated and merged over processes."""
        data = (trajectories.observations, trajectories.actions, trajectories.next_observations)
        base = self.communicator.statistics_state([self.intrinsic])
        rewards = self.intrinsic.rewards(*data, trajectories.episode_ends)
        self.intrinsic.update_statistics(*data)
        self.communicator.merge_statistics([self.intrinsic], base)
        return rewards

    def _intrinsic_advantages(self, trajectories, intrinsic_rewards):
        """A^i_t and R^i_t of a non-episodic bonus: GAE with γ_i and no episode ends, from V_i.

        Novelty does not stop where the task's episode does: the intrinsic return runs on into the
        next episode, so the state after step t is the one the worker saw next, ``observations[t + 1]``
        (the new episode's first state where one ended), and V_i of the last step's next state
        bootstraps the horizon.
        """
        from dexterity_nb.agent.objectives import generalized_advantage_estimates

        values = self.intrinsic_critic.values(np.concatenate([trajectories.observations, trajectories.next_observations[-1:]]))
        never = np.zeros_like(intrinsic_rewards)
        return generalized_advantage_estimates(intrinsic_rewards, values[:-1], values[1:], never, never,
                                               self.intrinsic.discount, self.lam)

    def _train_intrinsic(self, trajectories, epochs, batch_size, learning_rate, intrinsic_returns) -> dict:
        """Train the bonus on the cycle (after its bonus was taken), and V_i on R^i; their ``intrinsic_`` metrics."""
        metrics = self.intrinsic.train(trajectories.observations, trajectories.actions, trajectories.next_observations)
        metrics = {} if metrics is None else metrics
        if not isinstance(metrics, dict) or not all(isinstance(name, str) and isinstance(value, (int, float, np.number))
                                                    and not isinstance(value, bool) for name, value in metrics.items()):
            raise TypeError(f"{type(self.intrinsic).__name__}.train must return a dict of metrics {{name: number}} "
                            f"(or {{}}); it returned {metrics!r:.200}.")
        metrics = {f"intrinsic_{name}": float(value) for name, value in metrics.items()}
        if intrinsic_returns is not None:
            metrics["intrinsic_value_loss"] = self.intrinsic_critic.train(
                trajectories.observations, intrinsic_returns, epochs, batch_size, learning_rate, self._shuffle_rng)
        return metrics

    def _intrinsic_history(self, episode_returns, metrics) -> dict:
        if self.intrinsic is None:
            return {}
        return {"intrinsic_return": float(np.mean(episode_returns)) if episode_returns else math.nan,
                **{key: value for key, value in metrics.items() if key.startswith("intrinsic_")}}

    # ------------------------------------------------------------------ consistency
    def _snapshot(self):
        """Everything a cycle changes except env states, to undo an unfinished cycle."""
        # Weights and optimizer state are copied on the device, in the same call that computes
        # the values just before the update (_advantages); until then this cycle changed none.
        self._backup_is_fresh = False
        return {
            "transformers": [
                {name: statistics.get_state() for name, statistics in t.running_statistics().items()}
                for t in self.transformers
            ],
            "cycle": self.cycle,
            "history_length": len(self.history),
            "intrinsic": None if self.intrinsic is None else self._intrinsic_state(),
        }

    def _restore(self, snapshot):
        if self._backup_is_fresh:  # an interruption before the copy found the weights unchanged
            self._restore_weights()
            self._graph_setting_values.clear()  # the learning rate variable was restored too
        for transformer, states in zip(self.transformers, snapshot["transformers"]):
            for name, statistics in transformer.running_statistics().items():
                statistics.set_state(states[name])
        if snapshot["intrinsic"] is not None:
            self._set_intrinsic_state(snapshot["intrinsic"])
        self.cycle = snapshot["cycle"]
        del self.history[snapshot["history_length"]:]
        self._policy_forward_refresh()
        self.rollout.needs_reset = True  # the interrupted episodes are dropped; the next cycle starts fresh ones


def _unique_variables(variables):
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


def _checked_intrinsic(intrinsic):
    """The agent's own copy of the intrinsic reward (``None`` without one); an instance already in use is refused."""
    from dexterity_nb.agent.curiosity import resolve_intrinsic_reward

    intrinsic = resolve_intrinsic_reward(intrinsic)
    if intrinsic is not None and intrinsic.workers:
        raise ValueError(f"{intrinsic!r} already belongs to an agent (it learned from that agent's states). Pass a new "
                         f"instance, e.g. intrinsic={type(intrinsic).__name__}(...), or a name such as \"rnd\".")
    return copy.deepcopy(intrinsic)  # each agent learns its own counts or predictor, also in a comparison


def _check_model_builder(model_builder):
    from dexterity_nb.models import get_model_builder, register_model_builder

    if model_builder is get_model_builder or model_builder is register_model_builder or isinstance(model_builder, type):
        name = getattr(model_builder, "__name__", repr(model_builder))
        raise TypeError(
            f"`model_builder` got {name} itself; pass the builder it returns, e.g. "
            'PPOAgent(get_model_builder("simple", "ffn"), env).'
        )
    if not callable(model_builder):
        raise TypeError(f'`model_builder` must come from get_model_builder(...), e.g. get_model_builder("simple", "ffn"); got {model_builder!r}.')


def _cycle_bytes(samples: int, observation_size: int) -> int:
    """Rough memory of one cycle: observations and next observations as gathered and again for
    the value pass (float32), plus ~20 float64/float32 numbers per sample (rewards, advantages…)."""
    return samples * (4 * 4 * observation_size + 160)


def _check_cycle_fits_in_memory(horizon, workers, observation_space):
    observation_size = int(np.prod(getattr(observation_space, "shape", None) or (1,)))
    needed = _cycle_bytes(horizon * workers, observation_size)
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, AttributeError, OSError):
        return
    if needed > available:
        raise ValueError(
            f"`horizon` × `workers` = {horizon} × {workers} = {horizon * workers:,} samples per cycle would need about "
            f"{needed / 2**30:,.0f} GiB of memory; this machine has {available / 2**30:.0f} GiB. Use a smaller "
            "horizon (typical: 32–2048) or fewer workers."
        )


def _checked_callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise TypeError(f"`callbacks` must be a list; got one {type(callbacks).__name__}: wrap it, callbacks=[...].")
    if isinstance(callbacks, type) and issubclass(callbacks, Callback):
        raise TypeError(f"`callbacks` must be a list of instances; got the class {callbacks.__name__}: use callbacks=[{callbacks.__name__}()].")
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"`callbacks` must be a list of Callback instances, e.g. callbacks=[LiveDashboard()]; got {callbacks!r}.") from None
    for callback in callbacks:
        if isinstance(callback, type) and issubclass(callback, Callback):
            raise TypeError(f"`callbacks` holds the class {callback.__name__}; pass an instance: {callback.__name__}().")
        if not isinstance(callback, Callback):
            raise TypeError(f"Callbacks must subclass dexterity_nb.agent.callbacks.Callback; got {callback!r} in `callbacks`.")
    return callbacks



def _has_time_limit(env) -> bool:
    """True if ``env`` (or a wrapper inside it) ends episodes after a fixed number of steps."""
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return True
    while env is not None:
        if isinstance(env, gymnasium.wrappers.TimeLimit):
            return True
        env = getattr(env, "env", None)
    return False
