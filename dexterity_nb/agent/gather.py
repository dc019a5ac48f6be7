"""Gathering: workers play the current policy and record what happened.

Each worker is a :class:`Gatherer` with its own copy of the environment and its own random
stream; all workers share the current policy. At every step the policy is called *once* for the
observations of all workers (one batched call), then each worker chooses its action from its own
row of the predicted parameters through :meth:`Gatherer.select_action`, the one place to change
how actions are chosen (exploration, curiosity, ...).

When ``select_action`` is not overridden, the choice is made for all workers at once with the
same formulas and the same per-worker random streams, so results are identical, only faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

__all__ = ["Gatherer", "GathererError", "Rollout", "Trajectories", "overrides_select_action", "check_gatherer_class"]


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

    @property
    def frames(self) -> int:
        return int(self.rewards.size)


class Rollout:
    """The workers of one process: a vector of env copies, their gatherers and current states.

    Episodes run on across cycles (a cycle ends after ``horizon`` steps, not at an episode end),
    as in Stable-Baselines3 and CleanRL.
    """

    def __init__(self, env_factory, workers: int, gatherer_class, distribution, transformers, seed_sequence, first_worker_id=0):
        self.workers = workers
        self.distribution = distribution
        self.transformers = transformers
        self.seed_sequence = seed_sequence
        self.vector_env = SyncVectorEnv([env_factory] * workers, autoreset_mode=AutoresetMode.SAME_STEP)
        self.first_worker_id = first_worker_id
        self.assign(gatherer_class)
        self.needs_reset = True
        self.observations = None

    def assign(self, gatherer_class):
        """Give every worker a gatherer of this class; workers keep their random streams."""
        if getattr(self, "gatherers", None):
            rngs = [gatherer.rng for gatherer in self.gatherers]
        else:
            rngs = [np.random.default_rng(child) for child in worker_seeds(self.seed_sequence, self.first_worker_id, self.workers)]
        self.gatherers = [
            gatherer_class(self.first_worker_id + index, env, self.distribution, rng)
            for index, (env, rng) in enumerate(zip(self.vector_env.envs, rngs))
        ]
        self.custom_selection = overrides_select_action(gatherer_class)

    def rng_states(self):
        return [gatherer.rng.bit_generator.state for gatherer in self.gatherers]

    def set_rng_states(self, states):
        for gatherer, state in zip(self.gatherers, states):
            gatherer.rng.bit_generator.state = state

    def transform_states(self, states, update):
        for transformer in self.transformers:
            states = transformer.transform_state(states, update=update)
        return states

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
        self.episode_lengths = np.zeros(self.workers, dtype=np.int64)
        self.needs_reset = False

    def gather(self, policy_forward, horizon: int) -> Trajectories:
        """Play ``horizon`` steps in every worker with ``policy_forward(observations) -> parameters``."""
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
        finished_returns, finished_lengths = [], []
        rngs = [gatherer.rng for gatherer in self.gatherers]

        for t in range(horizon):
            observations[t] = self.observations
            parameters = policy_forward(self.observations)
            if self.custom_selection:
                step_actions, step_log_probabilities = self._select_one_by_one(parameters)
            else:
                step_actions, step_log_probabilities = distribution.sample_with_log_probability(*parameters, rng=rngs)
            actions[t] = step_actions
            log_probabilities[t] = step_log_probabilities

            raw_observations, raw_rewards, step_terminated, step_truncated, info = self.vector_env.step(
                distribution.env_actions(step_actions)
            )
            ends = step_terminated | step_truncated
            self.episode_returns += raw_rewards
            self.episode_lengths += 1
            transformed_rewards = raw_rewards
            for transformer in self.transformers:
                transformed_rewards = transformer.transform_reward(transformed_rewards, ends, update=True)
            rewards[t] = transformed_rewards
            terminated[t] = step_terminated
            episode_ends[t] = ends
            self.observations = self.transform_states(raw_observations, update=True)
            next_observations[t] = self.observations
            if ends.any():
                ended = np.flatnonzero(ends)
                final = np.stack([info["final_obs"][index] for index in ended])
                next_observations[t, ended] = self.transform_states(final, update=False)
                finished_returns.extend(self.episode_returns[ended].tolist())
                finished_lengths.extend(self.episode_lengths[ended].tolist())
                self.episode_returns[ended] = 0.0
                self.episode_lengths[ended] = 0

        return Trajectories(
            observations, next_observations, actions, log_probabilities, rewards, terminated, episode_ends,
            finished_returns, finished_lengths, time.perf_counter() - start,
        )

    def _select_one_by_one(self, parameters):
        """Ask each worker's overridden ``select_action`` and check what it returns."""
        chosen_actions, chosen_log_probabilities = [], []
        action_space = self.distribution.action_space
        for index, gatherer in enumerate(self.gatherers):
            action, log_probability = gatherer.select_action([parameter[index:index + 1] for parameter in parameters])
            chosen_actions.append(_check_action(gatherer, action, action_space))
            chosen_log_probabilities.append(_check_log_probability(gatherer, log_probability))
        return np.stack(chosen_actions), np.array(chosen_log_probabilities, dtype=np.float32)

    def close(self):
        self.vector_env.close()


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
