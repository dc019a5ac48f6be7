"""Transformers: running preprocessing of states and rewards.

A transformer sees the observations and rewards of *all* workers at once, as a batch with the
worker dimension first, and keeps running statistics of what it has seen. Because every worker's
data goes through the same statistics, the result equals what one worker would have computed had
it seen all the data; across processes (MPI) the statistics are merged with the exact parallel
formula in :func:`merge_moments`.

Two modes:

* training (``update=True``): statistics are updated with the batch, then applied;
* evaluation (``update=False``): statistics are frozen and only applied.

To write your own, subclass :class:`BaseTransformer` and override ``transform_state`` and/or
``transform_reward``; put running statistics in :class:`RunningMeanStd` attributes listed by
``running_statistics()`` so that they merge across processes and are saved with the agent.
Register it with :func:`register_transformer` so that a saved agent can name it when loading.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "merge_moments",
    "RunningMeanStd",
    "BaseTransformer",
    "StateNormalizationTransformer",
    "RewardNormalizationTransformer",
    "TRANSFORMERS",
    "register_transformer",
    "resolve_transformer",
]


def merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b):
    """Merge the moments of two disjoint samples (Chan et al.'s parallel algorithm).

    With n = n_a + n_b and δ = μ_b − μ_a::

        μ  = μ_a + δ · n_b / n
        σ² = (n_a σ²_a + n_b σ²_b + δ² · n_a n_b / n) / n

    ``var`` is the population variance (divide by n). Works elementwise on arrays of any shape.
    Returns ``(count, mean, var)``; merging with an empty sample returns the other one unchanged.
    """
    if count_b == 0:
        return count_a, np.array(mean_a, dtype=np.float64), np.array(var_a, dtype=np.float64)
    if count_a == 0:
        return count_b, np.array(mean_b, dtype=np.float64), np.array(var_b, dtype=np.float64)
    return _merge_with_squares(count_a, mean_a, var_a, count_b, np.asarray(mean_b, dtype=np.float64), var_b * count_b)


def _merge_with_squares(count_a, mean_a, var_a, count_b, mean_b, squares_b):
    """:func:`merge_moments`' formula, given the second sample's sum of squared deviations
    S_b = n_b σ²_b in place of σ²_b (what a batch yields directly); ``count_b`` > 0."""
    count = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (count_b / count)
    return count, mean, (var_a * count_a + squares_b + delta * delta * (count_a * count_b / count)) / count


class RunningMeanStd:
    """Running mean and (population) variance over a stream of batches.

    ``update(batch)`` folds in a batch whose first dimension indexes samples; ``merge(other)``
    folds in statistics gathered elsewhere. Both are exact: the result equals ``np.mean`` and
    ``np.var`` over all the data seen.
    """

    def __init__(self, shape=()):
        self.shape = tuple(shape)
        self.count = 0
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)

    def update(self, batch):
        """Fold in a batch: :func:`merge_moments` with the batch's own moments.

        The batch gives its mean x̄_b and its sum of squared deviations S_b = Σ (x − x̄_b)², which
        go into the merge as they are (no division by n_b to undo). It runs at every gathering
        step (state normalisation), hence no wrappers of ``np.mean`` and ``np.var``.
        """
        batch = np.asarray(batch, dtype=np.float64)
        if batch.shape[1:] != self.shape:  # one sample, or a batch to flatten
            batch = batch.reshape((-1,) + self.shape)
        count_b = batch.shape[0]
        if count_b == 0:
            return
        batch_mean = np.add.reduce(batch, axis=0) / count_b
        deviations = batch - batch_mean
        squares = np.add.reduce(deviations * deviations, axis=0)
        self.count, self.mean, self.var = _merge_with_squares(self.count, self.mean, self.var, count_b, batch_mean, squares)

    def merge(self, other: "RunningMeanStd"):
        self.count, self.mean, self.var = merge_moments(
            self.count, self.mean, self.var, other.count, other.mean, other.var
        )

    @property
    def std(self):
        return np.sqrt(self.var)

    def get_state(self) -> dict:
        return {"count": np.array(self.count, dtype=np.float64), "mean": self.mean.copy(), "var": self.var.copy()}

    def set_state(self, state: dict):
        self.count = float(state["count"])
        if self.count.is_integer():
            self.count = int(self.count)
        self.mean = np.array(state["mean"], dtype=np.float64).reshape(self.shape)
        self.var = np.array(state["var"], dtype=np.float64).reshape(self.shape)

    def __repr__(self):
        return f"RunningMeanStd(count={self.count}, mean={self.mean}, std={self.std})"


class BaseTransformer:
    """Identity transformer; subclasses override one or both ``transform_*`` methods.

    Arrays have the worker dimension first: ``states`` is ``(workers, *observation_shape)``,
    ``rewards`` and ``episode_ends`` are ``(workers,)``.
    """

    def set_discount(self, discount: float):
        """The agent's discount γ, given before ``setup``: for transformers that track discounted returns."""

    def setup(self, observation_space, workers: int):
        """Called once the observation space and the number of workers are known."""

    def restart_episodes(self):
        """Every worker starts a new episode (after an interrupted cycle or a load): forget per-episode state."""

    def transform_state(self, states, update: bool = True):
        return states

    def transform_reward(self, rewards, episode_ends, update: bool = True):
        return rewards

    def running_statistics(self) -> dict[str, RunningMeanStd]:
        """The statistics that merge across processes and are saved with the agent."""
        return {}

    def config(self) -> dict:
        """Constructor arguments, so that the transformer can be rebuilt when loading an agent."""
        return {}

    def __repr__(self):
        return type(self).__name__


class StateNormalizationTransformer(BaseTransformer):
    """Normalise observations to a clipped z-score: clip((s − μ) / √(σ² + ε), −c, c).

    μ and σ² are running estimates over every observation gathered so far (all workers).

    Args:
        clip: c, the bound of the z-score after normalising. Typical: 5–10.
        epsilon: ε, keeps the division finite while σ² is still 0. Typical: 1e-8.
    """

    def __init__(self, clip: float = 10.0, epsilon: float = 1e-8):
        for name, value in (("clip", clip), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < value < np.inf:
                raise ValueError(f"StateNormalizationTransformer: `{name}` must be a positive finite number, got {value!r}.")
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.statistics = None

    def setup(self, observation_space, workers):
        import gymnasium

        if not isinstance(observation_space, gymnasium.spaces.Box):  # a mean of a Dict or of category ids means nothing
            raise TypeError(
                f"StateNormalizationTransformer normalises Box observations; got {observation_space}. Flatten them into "
                "a Box first, e.g. make_env(lambda: gymnasium.wrappers.FlattenObservation(gymnasium.make(...)), "
                'transformers=["state"]) (Dict and Tuple are concatenated, Discrete becomes one-hot), or leave out "state".'
            )
        if self.statistics is None:
            self.statistics = RunningMeanStd(observation_space.shape)

    def transform_state(self, states, update=True):
        if self.statistics is None:  # used directly, outside an agent
            self.statistics = RunningMeanStd(np.shape(states)[1:])
        if update:
            self.statistics.update(states)
        normalized = states - self.statistics.mean  # a new float64 array, so the rest can work in place
        normalized /= np.sqrt(self.statistics.var + self.epsilon)
        # np.minimum(np.maximum(·)) is np.clip without its Python wrapper: this runs at every gathering step.
        np.maximum(normalized, -self.clip, out=normalized)
        return np.minimum(normalized, self.clip, out=normalized).astype(np.float32)

    def running_statistics(self):
        return {"state": self.statistics} if self.statistics is not None else {}

    def config(self):
        return {"clip": self.clip, "epsilon": self.epsilon}


class RewardNormalizationTransformer(BaseTransformer):
    """Scale rewards by the running standard deviation of the discounted return.

    Each worker keeps a discounted return G_t = γ · G_{t−1} · (1 − end_{t−1}) + r_t; the reward
    becomes clip(r_t / √(Var[G] + ε), −c, c). Only the scale changes (no mean is subtracted),
    so the sign of every reward, and what the task asks for, stay the same.

    Args:
        discount: γ of the tracked return. ``None`` (default): the agent's discount, so the scale
            matches the returns the agent optimises (0.99 outside an agent).
        clip: c, the bound after scaling. Typical: 10.
        epsilon: ε, keeps the division finite. Typical: 1e-8.
    """

    def __init__(self, discount: float | None = None, clip: float = 10.0, epsilon: float = 1e-8):
        if discount is not None and (isinstance(discount, bool) or not isinstance(discount, (int, float, np.integer, np.floating))
                                     or not 0.0 <= discount <= 1.0):
            raise ValueError(f"RewardNormalizationTransformer: `discount` must be None (the agent's) or in [0, 1], got {discount!r}.")
        for name, value in (("clip", clip), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < value < np.inf:
                raise ValueError(f"RewardNormalizationTransformer: `{name}` must be a positive finite number, got {value!r}.")
        self.requested_discount = None if discount is None else float(discount)
        self.discount = 0.99 if discount is None else float(discount)
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.statistics = RunningMeanStd(())
        self.returns = None  # per-worker discounted return, shape (workers,)

    def set_discount(self, discount):
        if self.requested_discount is None:
            self.discount = float(discount)

    def setup(self, observation_space, workers):
        self.returns = np.zeros(workers, dtype=np.float64)

    def restart_episodes(self):
        if self.returns is not None:
            self.returns[:] = 0.0

    def transform_reward(self, rewards, episode_ends, update=True):
        rewards = np.asarray(rewards, dtype=np.float64)
        if update:
            if self.returns is None or self.returns.shape != rewards.shape:
                self.returns = np.zeros(rewards.shape, dtype=np.float64)
            self.returns = self.returns * self.discount + rewards
            self.statistics.update(self.returns)
            self.returns[np.asarray(episode_ends, dtype=bool)] = 0.0
        scaled = rewards / np.sqrt(self.statistics.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def running_statistics(self):
        return {"return": self.statistics}

    def config(self):
        return {"discount": self.requested_discount, "clip": self.clip, "epsilon": self.epsilon}


TRANSFORMERS = {
    "state": StateNormalizationTransformer,
    "reward": RewardNormalizationTransformer,
    "StateNormalizationTransformer": StateNormalizationTransformer,
    "RewardNormalizationTransformer": RewardNormalizationTransformer,
}


def register_transformer(cls, name: str | None = None, overwrite: bool = False):
    """Register a :class:`BaseTransformer` subclass under ``name`` (default: its class name).

    A registered name works in ``make_env(..., transformers=[name])``, and it is how a saved agent
    names its transformers: ``PPOAgent.load`` finds them here and only here (a file never makes
    dexterity_nb import a module). Returns ``cls``, so it also works as a decorator.
    A name taken by another class raises, unless ``overwrite=True`` or the class is the same
    cell's class redefined (same module and qualname).
    """
    from dexterity_nb.common.registry import register_class

    return register_class(TRANSFORMERS, cls, name, BaseTransformer, overwrite, "transformer")


def resolve_transformer(spec) -> BaseTransformer:
    """Turn a transformer class, instance or name ("state", "reward") into an instance."""
    if isinstance(spec, BaseTransformer):
        return spec
    if isinstance(spec, type) and issubclass(spec, BaseTransformer):
        return spec()
    if isinstance(spec, str):
        if spec not in TRANSFORMERS:
            known = ", ".join(repr(name) for name in sorted(TRANSFORMERS))
            raise ValueError(
                f"Unknown transformer {spec!r} in `transformers`. Known names: {known}; "
                "or pass a BaseTransformer subclass or instance, e.g. transformers=[\"state\", \"reward\"]."
            )
        return TRANSFORMERS[spec]()
    raise TypeError(
        f"Each of `transformers` must be a BaseTransformer subclass, an instance of one, or a name "
        f"({', '.join(repr(name) for name in sorted(TRANSFORMERS))}); got {spec!r}."
    )
