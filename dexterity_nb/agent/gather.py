"""Gathering: workers play the current policy and record what happened.

Each worker is a :class:`Gatherer` with its own copy of the environment and its own random
stream; all workers share the current policy. At every step the policy is called *once* for the
observations of all workers (one batched call), then each worker chooses its action from its own
row of the predicted parameters through :meth:`Gatherer.select_action`, the one place to change
how actions are chosen (exploration, curiosity, ...).

When ``select_action`` is not overridden, the choice is made for all workers at once with the
same formulas and the same per-worker random streams, so results are identical, only faster; the
cycle's random numbers are drawn at its start, one call per worker
(:meth:`~dexterity_nb.common.policies.Distribution.draw_noise`), which leaves each stream where
drawing step by step would.

A recurrent policy also carries each worker's *memory* (its hidden state) from step to step and
from cycle to cycle; the rollout wipes a worker's memory where its episode ends, and records the
memory each observation was seen with, for training on sequences (``sequences.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from dexterity_nb.common.transformers import BaseTransformer

__all__ = ["Gatherer", "GathererError", "Rollout", "Trajectories", "overrides_select_action", "check_gatherer_class", "GATHERERS", "register_gatherer"]


class GathererError(ValueError):
    """A gatherer returned something the agent cannot learn from."""


class Gatherer:
    """One worker: an environment copy (``self.env``), a random stream (``self.rng``), and the
    action distribution of the policy (``self.distribution``).

    Override :meth:`select_action` to change how this worker picks actions.
    """

    def __init__(self, worker_id: int, env: gymnasium.Env, distribution, rng: np.random.Generator):
        self.worker_id = worker_id
        self.env = env
        self.distribution = distribution
        self.rng = rng

    def select_action(self, predicted_parameters):
        """Choose this worker's action from the policy's predicted parameters.

        Args:
            predicted_parameters: the policy's outputs for this worker's current state, a list of
                arrays with a batch dimension of 1 (for CartPole: ``[logits]`` of shape (1, 2)).

        Returns:
            ``(action, log_probability)``: an action of the env's action space, and the
            **log**-probability of that action under ``predicted_parameters``, i.e.
            ``self.distribution.log_probability(action[None], *predicted_parameters)``. PPO
            compares it with the log-probability under the updated policy to weight each sample.
            A gatherer that acts by another policy μ returns log μ(action). Anything else than this
            pair, or π(action) itself in place of its log, raises a :class:`GathererError`.
        """
        action, log_probability = self.distribution.sample_with_log_probability(*predicted_parameters, rng=self.rng)
        return action[0], log_probability[0]


def worker_seeds(seed_sequence, first_worker_id: int, count: int) -> list:
    """The seed sequences of global workers ``first_worker_id … first_worker_id + count − 1``.

    Worker i's seed is the i-th child of ``seed_sequence`` (what ``seed_sequence.spawn`` gives the
    i-th time), wherever the worker runs: with MPI, rank r's workers get the same seeds as in one
    process holding all workers, so seeds differ per worker and per rank, reproducibly.
    """
    return [
        np.random.SeedSequence(seed_sequence.entropy, spawn_key=(*seed_sequence.spawn_key, first_worker_id + index),
                               pool_size=seed_sequence.pool_size)
        for index in range(count)
    ]


def overrides_select_action(gatherer_class) -> bool:
    return gatherer_class.select_action is not Gatherer.select_action


def check_gatherer_class(gatherer_class):
    if not (isinstance(gatherer_class, type) and issubclass(gatherer_class, Gatherer)):
        raise TypeError(
            f"assign_gatherer needs a subclass of dexterity_nb.agent.gather.Gatherer (the class itself, "
            f"not an instance); got {gatherer_class!r}."
        )
    return gatherer_class


@dataclass
class Trajectories:
    """What the workers gathered in one cycle, laid out ``(horizon, workers, ...)``.

    ``next_observations[t]`` is the state step t led to: the final observation where an episode
    ended at t, otherwise ``observations[t + 1]`` (or the current state for the last step).

    Recurrent policies only (else ``None``): ``memories[t]`` is the memory the policy was called
    with together with ``observations[t]`` (zero at an episode's first step), and
    ``next_memories[t]`` the memory that call returned, which goes with ``next_observations[t]``
    (before it is wiped at an episode end). Shape ``(horizon, workers, memory_size)``.
    """

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    log_probabilities: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    episode_ends: np.ndarray
    episode_returns: list = field(default_factory=list)
    episode_lengths: list = field(default_factory=list)
    seconds: float = 0.0
    memories: np.ndarray | None = None
    next_memories: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.rewards.size)


class Rollout:
    """The workers of one process: a vector of env copies, their gatherers and current states.

    Episodes run on across cycles (a cycle ends after ``horizon`` steps, not at an episode end),
    as in Stable-Baselines3 and CleanRL.
    """

    def __init__(self, env_factory, workers: int, gatherer_class, distribution, transformers, seed_sequence, first_worker_id=0,
                 memory_size: int = 0):
        self.workers = workers
        self.distribution = distribution
        self.transformers = transformers
        self.seed_sequence = seed_sequence
        # copy=False: the vector env hands out its own buffer instead of a deep copy per step (~1 µs);
        # transform_states always returns a new array, so nothing here keeps that buffer.
        self.vector_env = SyncVectorEnv([env_factory] * workers, autoreset_mode=AutoresetMode.SAME_STEP, copy=False)
        self.first_worker_id = first_worker_id
        self.memory_size = memory_size  # 0: a feed-forward policy, which remembers nothing
        self.assign(gatherer_class)
        self.needs_reset = True
        self.observations = None

    def assign(self, gatherer_class):
        """Give every worker a gatherer of this class; workers keep their random streams.

        All or nothing: if the class fails to start for one worker, every worker keeps its old
        gatherer and its random stream where it was, and the error says which worker failed.
        """
        if getattr(self, "gatherers", None):
            rngs = [gatherer.rng for gatherer in self.gatherers]
        else:
            rngs = [np.random.default_rng(child) for child in worker_seeds(self.seed_sequence, self.first_worker_id, self.workers)]
        states = [rng.bit_generator.state for rng in rngs]
        gatherers = []
        for index, (env, rng) in enumerate(zip(self.vector_env.envs, rngs)):
            worker_id = self.first_worker_id + index
            try:
                gatherers.append(gatherer_class(worker_id, env, self.distribution, rng))
            except Exception as error:
                for rng_of_worker, state in zip(rngs, states):  # a constructor may have drawn from the streams
                    rng_of_worker.bit_generator.state = state
                if hasattr(error, "add_note"):  # Python 3.11+
                    name = getattr(gatherer_class, "__name__", repr(gatherer_class))
                    error.add_note(f"While creating {name}(worker_id={worker_id}, ...) for worker {worker_id}; "
                                   "every worker keeps its previous gatherer.")
                raise
        self.gatherers = gatherers
        self.custom_selection = overrides_select_action(gatherer_class)

    def rng_states(self):
        return [gatherer.rng.bit_generator.state for gatherer in self.gatherers]

    def set_rng_states(self, states):
        for gatherer, state in zip(self.gatherers, states):
            gatherer.rng.bit_generator.state = state

    def transform_states(self, states, update):
        """The transformers' view of raw states, always a new array (the vector env reuses its buffer)."""
        transformed = states
        for transformer in self.transformers:
            transformed = transformer.transform_state(transformed, update=update)
        return np.array(transformed) if np.may_share_memory(transformed, states) else transformed

    def reset(self):
        """Start fresh episodes in every worker, seeded from the worker's own stream."""
        seeds = [int(gatherer.rng.integers(2**31)) for gatherer in self.gatherers]
        for env, seed in zip(self.vector_env.envs, seeds):
            env.action_space.seed(seed)
        raw_observations, _ = self.vector_env.reset(seed=seeds)
        for transformer in self.transformers:
            transformer.restart_episodes()
        self.observations = self.transform_states(raw_observations, update=True)
        self.episode_returns = np.zeros(self.workers)
        # An episode's length is the steps taken since it began: one counter for all workers
        # instead of a per-step increment of a per-worker array.
        self.steps_taken = 0
        self.episode_starts = np.zeros(self.workers, dtype=np.int64)
        self.memory = np.zeros((self.workers, self.memory_size), dtype=np.float32)
        self.needs_reset = False

    def gather(self, policy_forward, horizon: int) -> Trajectories:
        """Play ``horizon`` steps in every worker with ``policy_forward(observations) -> parameters``
        (recurrent: ``policy_forward(observations, memory) -> (parameters, memory)``)."""
        start = time.perf_counter()
        if self.needs_reset:
            self.reset()
        workers, distribution = self.workers, self.distribution
        observation_shape = self.observations.shape[1:]
        action_shape = distribution.action_space.shape
        action_dtype = np.int64 if isinstance(distribution.action_space, gymnasium.spaces.Discrete) else np.float32
        observations = np.empty((horizon, workers, *observation_shape), dtype=np.float32)
        next_observations = np.empty_like(observations)
        actions = np.empty((horizon, workers, *action_shape), dtype=action_dtype)
        log_probabilities = np.empty((horizon, workers), dtype=np.float32)
        rewards = np.empty((horizon, workers), dtype=np.float32)
        terminated = np.empty((horizon, workers), dtype=bool)
        episode_ends = np.empty((horizon, workers), dtype=bool)
        finished_returns, finished_lengths, final_states = [], [], []
        rngs = [gatherer.rng for gatherer in self.gatherers]
        recurrent = self.memory_size > 0
        if recurrent:
            memories = np.empty((horizon, workers, self.memory_size), dtype=np.float32)
            next_memories = np.empty_like(memories)
        # The loop below runs once per step, for all workers at once (512 times a cycle in the tutorial):
        # what it calls is looked up once here, and transformers that leave rewards alone are skipped.
        sample, env_actions, step_envs = distribution.sample_with_log_probability, distribution.env_actions, self.vector_env.step
        reward_transformers = [transformer for transformer in self.transformers
                               if type(transformer).transform_reward is not BaseTransformer.transform_reward]
        episode_returns = self.episode_returns
        # The default selection draws the cycle's random numbers now, one call per worker; a custom
        # select_action uses self.rng its own way, step by step.
        noise = None if self.custom_selection else distribution.draw_noise(rngs, horizon)

        for t in range(horizon):
            current = self.observations
            observations[t] = current
            if recurrent:
                memories[t] = self.memory
                parameters, self.memory = policy_forward(current, self.memory)
                next_memories[t] = self.memory
            else:
                parameters = policy_forward(current)
            if self.custom_selection:
                step_actions, step_log_probabilities = self._select_one_by_one(parameters)
            elif noise is not None:
                step_actions, step_log_probabilities = distribution.sample_with_noise(noise[t], *parameters)
            else:
                step_actions, step_log_probabilities = sample(*parameters, rng=rngs)
            actions[t] = step_actions
            log_probabilities[t] = step_log_probabilities

            raw_observations, raw_rewards, step_terminated, step_truncated, info = step_envs(env_actions(step_actions))
            self.steps_taken += 1
            ends = step_terminated | step_truncated
            episode_returns += raw_rewards
            transformed_rewards = raw_rewards
            for transformer in reward_transformers:
                transformed_rewards = transformer.transform_reward(transformed_rewards, ends, update=True)
            rewards[t] = transformed_rewards
            terminated[t] = step_terminated
            episode_ends[t] = ends
            self.observations = self.transform_states(raw_observations, update=True)
            if np.count_nonzero(ends):  # ~4x faster than ends.any() on a small array
                ended = ends.nonzero()[0]
                if recurrent:
                    self.memory[ended] = 0.0  # a new episode remembers nothing of the last one
                final = np.stack(info["final_obs"][ended])
                final_states.append((t, ended, self.transform_states(final, update=False)))
                finished_returns.extend(episode_returns[ended].tolist())
                finished_lengths.extend((self.steps_taken - self.episode_starts[ended]).tolist())
                episode_returns[ended] = 0.0
                self.episode_starts[ended] = self.steps_taken

        # The state each step led to is the next step's, except where an episode ended (its final
        # state) and after the last step: one copy for the cycle instead of a row per step.
        next_observations[:-1] = observations[1:]
        next_observations[-1] = self.observations
        for t, ended, final in final_states:
            next_observations[t, ended] = final
        return Trajectories(
            observations, next_observations, actions, log_probabilities, rewards, terminated, episode_ends,
            finished_returns, finished_lengths, time.perf_counter() - start,
            memories if recurrent else None, next_memories if recurrent else None,
        )

    def _select_one_by_one(self, parameters):
        """Ask each worker's overridden ``select_action`` and check what it returns."""
        chosen_actions, chosen_log_probabilities = [], []
        action_space = self.distribution.action_space
        for index, gatherer in enumerate(self.gatherers):
            selection = gatherer.select_action([parameter[index:index + 1] for parameter in parameters])
            action, log_probability = _unpack_selection(gatherer, selection)
            chosen_actions.append(_check_action(gatherer, action, action_space))
            chosen_log_probabilities.append(_check_log_probability(gatherer, log_probability))
        actions, log_probabilities = np.stack(chosen_actions), np.array(chosen_log_probabilities)
        _check_logarithms(self.gatherers, self.distribution, actions, log_probabilities, parameters)
        return actions, log_probabilities.astype(np.float32)

    def close(self):
        self.vector_env.close()


def _short_repr(value, limit=80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _unpack_selection(gatherer, selection):
    """``(action, log_probability)`` from what ``select_action`` returned, or a GathererError saying what came."""
    if isinstance(selection, (tuple, list)) and len(selection) == 2:
        return selection
    name = type(gatherer).__name__
    fix = ("End select_action with `return action, log_probability`, the log-probability being "
           "self.distribution.log_probability(action[None], *predicted_parameters) of the chosen action.")
    if selection is None:
        raise GathererError(f"{name}.select_action returned None; it must return (action, log_probability) — "
                            f"did you forget `return`? {fix}")
    if isinstance(selection, (tuple, list)):
        came = f"a {type(selection).__name__} of {len(selection)} items {_short_repr(selection)}"
    else:
        came = f"{type(selection).__name__} {_short_repr(selection)}"
    raise GathererError(f"{name}.select_action returned {came}; it must return the pair (action, log_probability). {fix}")


def _check_logarithms(gatherers, distribution, actions, returned, parameters):
    """Refuse a probability (or −log π) returned in place of a log-probability, for all workers at once.

    PPO weighs each sample by exp(log π_new(a|s) − returned); with p in place of log p that ratio
    means nothing (every sample gets clipped). With log π(a|s) of each chosen action under the
    predicted parameters (one vectorised call), a returned value is refused if it

    * equals π(a|s) = exp(log π(a|s)), or −log π(a|s), without equalling log π(a|s);
    * is above 0 for a discrete action (π(a|s) ≤ 1, so log π(a|s) ≤ 0).

    A behaviour policy's log μ(a|s) ≠ log π(a|s) (ε-greedy) passes: only its sign is checked.
    """
    log_pi = np.asarray(distribution.log_probability(actions, *parameters), dtype=np.float64).reshape(-1)

    def close_to(expected, absolute=1e-6):  # np.isclose's test, without its ~4 µs of overhead per call
        return np.abs(returned - expected) <= 1e-5 * np.abs(expected) + absolute

    is_log = close_to(log_pi)
    is_probability = close_to(np.exp(log_pi), absolute=0.0) & ~is_log
    is_negated = close_to(-log_pi) & ~is_log
    positive = returned > 1e-5 if isinstance(distribution.action_space, gymnasium.spaces.Discrete) else np.zeros_like(is_log)
    refused = is_probability | is_negated | positive
    if not refused.any():
        return
    index = int(np.flatnonzero(refused)[0])
    gatherer, value, log_value = gatherers[index], float(returned[index]), float(log_pi[index])
    came = f"{type(gatherer).__name__}.select_action returned {value:.6g} for worker {gatherer.worker_id}"
    action = _short_repr(actions[index].tolist())
    if is_probability[index]:
        raise GathererError(
            f"{came}, which equals π(a|s) = exp(log π(a|s)) of its action {action}, not log π(a|s) = {log_value:.6g}: "
            "a probability where the log-probability belongs. Return its log, `np.log(p)`, or "
            "self.distribution.log_probability(action[None], *predicted_parameters)."
        )
    if is_negated[index]:
        raise GathererError(
            f"{came}, which equals −log π(a|s) of its action {action}, not log π(a|s) = {log_value:.6g}: "
            "drop the minus sign (select_action returns the log-probability, not the loss −log π)."
        )
    raise GathererError(
        f"{type(gatherer).__name__}.select_action returned the log-probability {value:.6g} for worker "
        f"{gatherer.worker_id} (action {action}); the log-probability of a discrete action must be ≤ 0, since "
        "π(a|s) ≤ 1. If it is a probability p, return `np.log(p)`."
    )


def _check_action(gatherer, action, action_space):
    name = type(gatherer).__name__
    value = np.asarray(action)
    if isinstance(action_space, gymnasium.spaces.Discrete):
        flat = value.reshape(-1)
        if flat.size != 1 or not (flat.dtype.kind in "iu" or float(flat[0]).is_integer()):
            raise GathererError(f"{name}.select_action returned the action {action!r}; expected one integer of {action_space}.")
        integer = int(flat[0])
        if not 0 <= integer - int(action_space.start) < int(action_space.n):
            raise GathererError(f"{name}.select_action returned the action {integer}, which is outside {action_space}.")
        return integer
    if value.size != int(np.prod(action_space.shape)):
        raise GathererError(
            f"{name}.select_action returned an action of shape {value.shape}; expected shape {action_space.shape} of {action_space}."
        )
    if not np.all(np.isfinite(value)):
        raise GathererError(f"{name}.select_action returned a non-finite action {value}.")
    return value.reshape(action_space.shape).astype(np.float32)


def _check_log_probability(gatherer, log_probability):
    name = type(gatherer).__name__
    value = np.asarray(log_probability, dtype=np.float64).reshape(-1)
    if value.size != 1:
        raise GathererError(
            f"{name}.select_action returned a log-probability of shape {np.shape(log_probability)}; expected one number "
            "(the log-probability of the chosen action)."
        )
    if not np.isfinite(value[0]):
        raise GathererError(f"{name}.select_action returned the log-probability {value[0]}; it must be finite.")
    return float(value[0])


# ------------------------------------------------------------------ registry
GATHERERS: dict[str, type] = {}  # name -> Gatherer subclass; how saved agents name their gatherer


def register_gatherer(cls=None, *, name: str | None = None, overwrite: bool = False):
    """Register a :class:`Gatherer` subclass under ``name`` (default: its class name).

    A saved agent stores its gatherer's registered name, and ``PPOAgent.load`` finds the class
    here and only here (a file never makes dexterity_nb import a module). Use it as a call,
    ``register_gatherer(MyGatherer)``, or as a decorator, ``@register_gatherer`` or
    ``@register_gatherer(name="epsilon")``. A name taken by another class raises, unless
    ``overwrite=True`` or the class is the same cell's class redefined (same module and qualname).
    """
    from dexterity_nb.common.registry import register_class

    if cls is None:
        return lambda cls: register_class(GATHERERS, cls, name, Gatherer, overwrite, "gatherer")
    return register_class(GATHERERS, cls, name, Gatherer, overwrite, "gatherer")


register_gatherer(Gatherer)
