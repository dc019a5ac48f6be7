"""Curiosity: intrinsic rewards, a bonus for reaching states the agent knows little about.

A sparse task (MountainCar's flag, a maze's exit) gives no reward until the agent stumbles on
it, so there is nothing to learn from; sampling actions more randomly rarely helps. An
*intrinsic reward* adds a bonus for novelty to every step, and PPO then learns to seek new
states, until the task's own reward is found. The bonus is part of the reward, not of action
selection (that is a :class:`~dexterity_nb.agent.gather.Gatherer`'s job).

**The extension point** is :class:`IntrinsicReward`. A subclass overrides

* ``bonus(observations, actions, next_observations)`` → the raw bonus of every step, ``(T, W)``,
  computed from what the agent knows *before* this cycle (it must not learn here), and
* ``train(observations, actions, next_observations)`` → a dict of metrics; it learns from the
  cycle (a predictor's step, a count), after the bonus was taken.

Arrays are laid out ``(horizon T, workers W, ...)``, observations as the networks see them
(after the env's transformers). Running statistics go in :class:`RunningMeanStd` attributes
listed by ``running_statistics()`` (merged over MPI processes, saved, undone by an interrupt);
public NumPy array attributes (a count table) are saved and undone as they are; anything else
learned (a network's weights) goes in an override of ``get_state``/``set_state``. Build networks
and tables in ``setup``, not in ``__init__``: the agent takes a copy of the instance it is given,
so one instance can configure several agents (a comparison over seeds), each learning its own.
Register a class with :func:`register_intrinsic_reward` so a saved agent can name it.

How the agent uses it (``PPOAgent(..., intrinsic=...)``), once per cycle after gathering:

1. r^i_t = β · b_t / σ_R, where b_t is the bonus, β the ``weight`` and σ_R the running standard
   deviation of the discounted intrinsic return (``normalize=True``, as RND needs: its raw errors
   shrink as the predictor learns; ``False`` uses b_t as it is).
2. ``episodic=True``: the bonus joins the task's reward, r_t + r^i_t, and the one value network
   learns their sum; the intrinsic return stops where an episode ends. ``episodic=False`` (as
   in RND): novelty does not end with an episode, so the intrinsic return runs on across episode
   ends with its own discount γ_i; a second value estimate V_i (:class:`IntrinsicCritic`) learns
   it, and the advantage is A_t = A^task_t + A^i_t.
3. ``train`` learns from the cycle.

The history, log and dashboard keep showing the task's own return; the intrinsic return is
recorded next to it as ``intrinsic_return`` (the mean over the cycle's finished episodes of
Σ r^i_t), plus the metrics ``train`` returns, each prefixed ``intrinsic_``.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.common.transformers import RunningMeanStd

__all__ = [
    "IntrinsicReward",
    "RandomNetworkDistillation",
    "CountBonus",
    "IntrinsicCritic",
    "discounted_running_sums",
    "count_bonus",
    "grid_cells",
    "INTRINSIC_REWARDS",
    "register_intrinsic_reward",
    "resolve_intrinsic_reward",
]


# ---------------------------------------------------------------------- the maths
def discounted_running_sums(previous, rewards, discount):
    """The discounted sum of rewards so far, per worker, carried across cycles and episodes.

    R_t = γ R_{t−1} + r_t,   with R_{−1} = ``previous``.

    RND's σ_R is the standard deviation of these R_t: a scale for the bonus that does not depend on
    where episodes end (the intrinsic return of ``episodic=False``).

    Args:
        previous: R_{−1}, shape ``(W,)``.
        rewards: r_t, shape ``(T, W)``.
        discount: γ ∈ [0, 1].

    Returns:
        ``(T, W)`` array of R_t; its last row is the ``previous`` of the next cycle.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    sums = np.empty_like(rewards)
    running = np.asarray(previous, dtype=np.float64)
    for t in range(len(rewards)):
        running = discount * running + rewards[t]
        sums[t] = running
    return sums


def count_bonus(counts):
    """The count-based bonus b = 1 / √N for states visited N times before (N = 0 counts as 1).

    Rare states earn much (b = 1 for a first visit), often-visited ones little (b → 0 as N grows),
    which is the novelty bonus of Strehl and Littman (2008) and Bellemare et al. (2016).
    Shape: same as ``counts``.
    """
    return 1.0 / np.sqrt(np.maximum(np.asarray(counts, dtype=np.float64), 1.0))


def grid_cells(observations, low, high, bins):
    """The cell of a regular grid that each observation falls in, as one integer per observation.

    Each dimension d is cut into ``bins`` equal intervals between ``low[d]`` and ``high[d]``
    (values outside go to the first or last interval); the cell index is
    Σ_d i_d · bins^d, where i_d ∈ {0, …, bins − 1} is the interval of dimension d.

    Args:
        observations: ``(..., D)``.
        low, high: ``(D,)`` bounds.
        bins: intervals per dimension.

    Returns:
        Integer array of shape ``observations.shape[:-1]``, values in [0, bins^D).
    """
    observations = np.asarray(observations, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    scaled = (observations - low) / (high - low) * bins
    intervals = np.clip(np.floor(scaled), 0, bins - 1).astype(np.int64)
    return (intervals * bins ** np.arange(observations.shape[-1], dtype=np.int64)).sum(axis=-1)


# ---------------------------------------------------------------------- the extension point
class IntrinsicReward:
    """A bonus added to the task's reward for visiting novel states; subclass it (module docstring).

    Args:
        weight: β, the bonus's weight against the task's reward. Typical: 0.1–2 (with
            ``normalize=True`` the bonus is of order 1 per step).
        episodic: whether the intrinsic return ends with an episode (``True``: the bonus joins the
            reward) or runs on across episodes with its own value estimate (``False``, RND's choice).
        normalize: divide the bonus by the running standard deviation of its discounted return
            (RND's normalisation). Use ``False`` for a bonus that is already on a known scale.
        discount: γ_i, the intrinsic return's discount: for ``normalize`` and ``episodic=False``.
            Typical: 0.99.
    """

    def __init__(self, weight: float = 1.0, episodic: bool = True, normalize: bool = False, discount: float = 0.99):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"`weight` (β) must be a finite number ≥ 0, got {weight!r}; try 1.0.")
        if not isinstance(episodic, bool) or not isinstance(normalize, bool):
            raise TypeError(f"`episodic` and `normalize` must be True or False; got {episodic!r} and {normalize!r}.")
        if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 <= discount <= 1:
            raise ValueError(f"`discount` (γ_i) must be a number in [0, 1], got {discount!r}; try 0.99.")
        self.weight, self.episodic, self.normalize, self.discount = float(weight), episodic, normalize, float(discount)
        self.return_statistics = RunningMeanStd()  # of the discounted intrinsic return R_t
        self.workers = 0
        self.episode_returns: list[float] = []  # Σ r^i_t of the episodes that ended in the last cycle

    # -------------------------------------------------------------- what a subclass overrides
    def setup(self, observation_space, action_space, workers: int, communicator=None):
        """Called once by the agent before any drill. Subclasses build here and call ``super().setup``.

        ``communicator`` (a :class:`~dexterity_nb.common.mpi.SingleProcess` or ``Communicator``)
        is for ``train`` to average gradients or sum counts over MPI processes.
        """
        from dexterity_nb.common.mpi import SingleProcess

        self.observation_space, self.action_space, self.workers = observation_space, action_space, workers
        self.communicator = SingleProcess() if communicator is None else communicator
        self.restart_episodes()

    def bonus(self, observations, actions, next_observations):
        """The raw bonus b_t of each step, ``(T, W)``, from what is known before this cycle."""
        raise NotImplementedError(f"{type(self).__name__} must override bonus(observations, actions, next_observations).")

    def update_statistics(self, observations, actions, next_observations):
        """Fold this cycle into the ``running_statistics()`` (before ``train``; merged over processes in between)."""

    def train(self, observations, actions, next_observations) -> dict:
        """Learn from the cycle; return metrics ({name: number}) for the history. Default: nothing to learn."""
        return {}

    def running_statistics(self) -> dict[str, RunningMeanStd]:
        """The statistics that merge across processes, are saved and are undone by an interrupt."""
        return {"return": self.return_statistics}

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything learned, as named arrays (saved with the agent; restored after an interrupt).

        By default: the ``running_statistics()`` and every public NumPy array attribute (a count
        table ``self.counts``), so a simple bonus needs nothing more. Override it (calling
        ``super()``) for what is not an array, such as a Keras network's weights.
        """
        state = {f"statistics/{name}/{key}": value for name, statistics in self.running_statistics().items()
                 for key, value in statistics.get_state().items()}
        state.update({name: value.copy() for name, value in vars(self).items()
                      if isinstance(value, np.ndarray) and not name.startswith("_")})
        return state

    def set_state(self, state: dict[str, np.ndarray]):
        """Restore what ``get_state`` returned."""
        for name, statistics in self.running_statistics().items():
            statistics.set_state({key: state[f"statistics/{name}/{key}"] for key in ("count", "mean", "var")})
        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray) and not name.startswith("_"):
                saved = np.asarray(state[name])
                if saved.shape != value.shape:
                    raise ValueError(f"The saved array {name!r} has shape {saved.shape}; "
                                     f"{type(self).__name__}.{name} has {value.shape}.")
                setattr(self, name, saved.astype(value.dtype))

    def config(self) -> dict:
        """Constructor arguments, so that it can be rebuilt when an agent is loaded."""
        return {"weight": self.weight, "episodic": self.episodic, "normalize": self.normalize, "discount": self.discount}

    # -------------------------------------------------------------- what the agent calls
    def restart_episodes(self):
        """Every worker starts afresh (first drill, after an interrupt or a load)."""
        self._running_return = np.zeros(self.workers)  # R_{t−1} of discounted_running_sums
        self._episode_sums = np.zeros(self.workers)

    def rewards(self, observations, actions, next_observations, episode_ends):
        """r^i_t = β · b_t / σ_R (or β · b_t without ``normalize``), ``(T, W)`` float32.

        Also updates σ_R's statistics with this cycle's discounted intrinsic returns, and records
        in ``episode_returns`` the summed r^i_t of every episode that ended in the cycle.
        """
        bonus = np.asarray(self.bonus(observations, actions, next_observations), dtype=np.float64)
        expected = np.shape(episode_ends)
        if bonus.shape != expected or not np.all(np.isfinite(bonus)):
            raise ValueError(f"{type(self).__name__}.bonus must return finite numbers of shape (horizon, workers) = "
                             f"{expected}; it returned shape {bonus.shape}"
                             f"{'' if bonus.shape != expected else ' with NaN or infinite values'}.")
        if self.normalize:
            sums = discounted_running_sums(self._running_return, bonus, self.discount)
            self._running_return = sums[-1]
            self.return_statistics.update(sums.reshape(-1))
            bonus = bonus / (self.return_statistics.std + 1e-8)
        rewards = self.weight * bonus
        self.episode_returns = []
        for step, ends in zip(rewards, np.asarray(episode_ends, dtype=bool)):
            self._episode_sums += step
            self.episode_returns += [float(value) for value in self._episode_sums[ends]]
            self._episode_sums[ends] = 0.0
        return rewards.astype(np.float32)

    def __repr__(self):
        options = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({options})"


# ---------------------------------------------------------------------- two bonuses
class CountBonus(IntrinsicReward):
    """b_t = 1 / √N(cell(s_{t+1})): a count of visits on a coarse grid over the observations.

    The simplest curiosity: cut each observation dimension into ``bins`` intervals between
    ``low`` and ``high`` (default: the observation space's bounds), count how often each cell
    was reached in earlier cycles, and pay :func:`count_bonus` for reaching it again. It works
    where the observation is small and bounded (MountainCar: position and velocity); in high
    dimensions almost every cell is new, which is why RND exists.

    Args:
        bins: intervals per dimension (the grid has bins^D cells). Typical: 10–30.
        low, high: the grid's bounds per dimension; default the observation space's.
        weight, episodic, normalize, discount: see :class:`IntrinsicReward` (counts need no
            normalisation: the bonus is 1 for a first visit and shrinks from there).
    """

    def __init__(self, bins: int = 20, low=None, high=None, weight: float = 1.0, episodic: bool = True,
                 normalize: bool = False, discount: float = 0.99):
        super().__init__(weight=weight, episodic=episodic, normalize=normalize, discount=discount)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"`bins` must be a positive int (intervals per dimension), got {bins!r}; try 20.")
        self.bins = bins
        self.low = None if low is None else [float(value) for value in np.ravel(low)]
        self.high = None if high is None else [float(value) for value in np.ravel(high)]

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        shape = getattr(observation_space, "shape", None)
        if not shape or len(shape) != 1:
            raise ValueError(f"CountBonus needs a flat observation vector (a Box of shape (D,)); got {observation_space}.")
        low = np.asarray(observation_space.low if self.low is None else self.low, dtype=np.float64)
        high = np.asarray(observation_space.high if self.high is None else self.high, dtype=np.float64)
        if low.shape != shape or high.shape != shape or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) \
                or np.any(high <= low):
            raise ValueError(
                f"CountBonus needs finite bounds low < high for each of the {shape[0]} observation dimensions; got "
                f"low={low.tolist()}, high={high.tolist()}. Pass CountBonus(low=[...], high=[...]) on the scale of the "
                "observations the networks see: after a state-normalising transformer they are normalised (try "
                "±3), so the env's own bounds do not apply; or drop the \"state\" transformer.")
        if self.bins ** shape[0] > 10_000_000:
            raise ValueError(f"A grid of {self.bins}^{shape[0]} cells is too large to count; use fewer `bins` or RND.")
        self._low, self._high = low, high
        self.counts = np.zeros(self.bins ** shape[0], dtype=np.int64)

    def bonus(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self._low, self._high, self.bins)
        return count_bonus(self.counts[cells])

    def train(self, observations, actions, next_observations):
        cells = grid_cells(next_observations, self._low, self._high, self.bins)
        visits = np.bincount(cells.ravel(), minlength=self.counts.size)
        if self.communicator.size > 1:  # every process adds every process's visits (exact for < 2^24 per cycle)
            visits = np.rint(self.communicator.average(visits.astype(np.float32)) * self.communicator.size)
        self.counts += visits.astype(np.int64)
        return {"cells_visited": int(np.count_nonzero(self.counts))}

    def set_state(self, state):  # the counts are saved as a public array attribute (IntrinsicReward.get_state)
        counts = np.asarray(state["counts"])
        if counts.dtype.kind not in "iuf" or not np.array_equal(counts, np.round(counts)) or np.any(counts < 0):
            raise ValueError("The saved counts must be whole numbers ≥ 0 (visits); these are not.")
        super().set_state(state)  # assigns the counts, cast to the table's int64

    def config(self):
        return {**super().config(), "bins": self.bins, "low": self.low, "high": self.high}


class RandomNetworkDistillation(IntrinsicReward):
    """RND (Burda, Edwards, Storkey and Klimov, 2018): b_t = ‖f̂(s_{t+1}) − f(s_{t+1})‖² / k.

    f is a network with random weights that is never trained (the *target*); f̂, the
    *predictor*, learns to imitate it on the states the agent visits. Its error is small on
    states like those seen often and large on new ones, so the error is a novelty bonus that
    works in any number of dimensions. Both networks see the observation normalised by running
    statistics and clipped to [−5, 5]; the bonus is divided by σ_R (``normalize``).

    Args:
        features: k, the width of both networks' output. Typical: 64–512.
        hidden_units: the hidden layers of both networks.
        learning_rate: the predictor's Adam step size. Typical: 1e-4–1e-3. A predictor that learns
            too fast makes every visited region familiar at once and the bonus vanishes (on
            MountainCar, 1e-3 with 2 epochs: no flag in 60 cycles; 1e-4 with 1 epoch: the flag).
        epochs, batch_size: passes over the cycle's states and states per step when training the
            predictor.
        weight, episodic, normalize, discount: see :class:`IntrinsicReward`; RND's defaults are a
            non-episodic, normalised bonus.
    """

    def __init__(self, features: int = 64, hidden_units=(64, 64), learning_rate: float = 1e-4, epochs: int = 1,
                 batch_size: int = 256, weight: float = 1.0, episodic: bool = False, normalize: bool = True,
                 discount: float = 0.99):
        super().__init__(weight=weight, episodic=episodic, normalize=normalize, discount=discount)
        for name, value in (("features", features), ("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        hidden_units = tuple(hidden_units)
        if not all(isinstance(units, int) and not isinstance(units, bool) and units > 0 for units in hidden_units):
            raise ValueError(f"`hidden_units` must be positive ints, one per hidden layer; got {hidden_units!r}.")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < 1:
            raise ValueError(f"`learning_rate` must be a number in (0, 1), got {learning_rate!r}; try 1e-3.")
        self.features, self.hidden_units, self.learning_rate = features, hidden_units, float(learning_rate)
        self.epochs, self.batch_size = epochs, batch_size

    def setup(self, observation_space, action_space, workers, communicator=None):
        super().setup(observation_space, action_space, workers, communicator)
        from dexterity_nb.common.quiet_import import keras, tensorflow as tf

        shape = tuple(observation_space.shape)
        self.observation_statistics = RunningMeanStd(shape)

        def network(name, depth_extra):
            layers = [keras.layers.Dense(units, activation="relu") for units in self.hidden_units]
            layers += [keras.layers.Dense(units, activation="relu") for units in self.hidden_units[-1:] * depth_extra]
            return keras.Sequential([keras.Input(shape), *layers, keras.layers.Dense(self.features)], name=name)

        self.target = network("rnd_target", 0)
        self.predictor = network("rnd_predictor", 1)  # one layer deeper: it must be able to fit the target
        self.optimizer = keras.optimizers.Adam(self.learning_rate)
        self.optimizer.build(self.predictor.trainable_variables)
        signature = [tf.TensorSpec((None, *shape), tf.float32)]

        @tf.function(input_signature=signature)
        def errors(states):  # ‖f̂(s) − f(s)‖² / k per state
            return tf.reduce_mean(tf.square(self.predictor(states) - self.target(states)), axis=-1)

        @tf.function(input_signature=signature)
        def gradients(states):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(errors(states))
            return tape.gradient(loss, self.predictor.trainable_variables), loss

        self._errors, self._gradients = errors, gradients
        self._step = _compiled_step(gradients, self.optimizer, self.predictor.trainable_variables, signature)

    def _normalized(self, states):
        states = np.asarray(states, dtype=np.float64).reshape(-1, *self.observation_statistics.shape)
        normalized = (states - self.observation_statistics.mean) / (self.observation_statistics.std + 1e-8)
        return np.clip(normalized, -5.0, 5.0).astype(np.float32)

    def bonus(self, observations, actions, next_observations):
        horizon, workers = np.shape(next_observations)[:2]
        return self._errors(self._normalized(next_observations)).numpy().reshape(horizon, workers)

    def update_statistics(self, observations, actions, next_observations):
        self.observation_statistics.update(np.reshape(next_observations, (-1, *self.observation_statistics.shape)))

    def train(self, observations, actions, next_observations):
        states = self._normalized(next_observations)
        rng = np.random.default_rng(self.optimizer.iterations.numpy())  # the same order on every MPI process
        losses = []
        variables = self.predictor.trainable_variables
        # Every process takes as many steps of equally large batches (its share of the mean gradient).
        batch_size = _fewest_over_processes(self.communicator, min(self.batch_size, len(states)))
        steps = _fewest_over_processes(self.communicator, len(states) // batch_size)
        for _ in range(self.epochs):
            order = rng.permutation(len(states))
            for step in range(steps):
                batch = states[order[step * batch_size:(step + 1) * batch_size]]
                losses.append(_train_step(self._step, self._gradients, self.optimizer, variables, self.communicator, batch))
        return {"predictor_loss": float(np.mean(losses))}

    def running_statistics(self):
        return {**super().running_statistics(), "observation": self.observation_statistics}

    def _variable_groups(self):
        return {"target": self.target.weights, "predictor": self.predictor.weights, "optimizer": self.optimizer.variables}

    def get_state(self):
        return {**super().get_state(), **_arrays_of(self._variable_groups())}

    def set_state(self, state):
        super().set_state(state)
        _assign_arrays(self._variable_groups(), state)

    def config(self):
        return {**super().config(), "features": self.features, "hidden_units": list(self.hidden_units),
                "learning_rate": self.learning_rate, "epochs": self.epochs, "batch_size": self.batch_size}


# ---------------------------------------------------------------------- V_i for episodic=False
class IntrinsicCritic:
    """V_i(s): the value of the non-episodic intrinsic return, a small network of its own.

    It is trained like the value network, on the λ-returns of the intrinsic rewards
    (R^i_t = A^i_t + V_i(s_t)), with the drill's epochs and batch size and the agent's learning
    rate, and saved with the agent. It sees observations only, also for a recurrent agent: the
    novelty of a state does not depend on the episode's past the way the task's value may.
    """

    def __init__(self, observation_space, hidden_units=(64, 64), communicator=None):
        from dexterity_nb.common.mpi import SingleProcess
        from dexterity_nb.common.quiet_import import keras, tensorflow as tf

        shape = tuple(observation_space.shape)
        self.communicator = SingleProcess() if communicator is None else communicator
        self.network = keras.Sequential([keras.Input(shape), *(keras.layers.Dense(units, activation="tanh") for units in hidden_units),
                                         keras.layers.Dense(1)], name="intrinsic_value")
        self.optimizer = keras.optimizers.Adam(1e-3, epsilon=1e-5)
        self.optimizer.build(self.network.trainable_variables)
        states = tf.TensorSpec((None, *shape), tf.float32)

        @tf.function(input_signature=[states])
        def values(observations):
            return self.network(observations)[:, 0]

        signature = [states, tf.TensorSpec((None,), tf.float32)]

        @tf.function(input_signature=signature)
        def gradients(observations, returns):
            with tf.GradientTape() as tape:
                loss = 0.5 * tf.reduce_mean(tf.square(values(observations) - returns))
            return tape.gradient(loss, self.network.trainable_variables), loss

        self._values, self._gradients = values, gradients
        self._step = _compiled_step(gradients, self.optimizer, self.network.trainable_variables, signature)

    def values(self, observations):
        """V_i of each observation, shape ``observations.shape[:-len(obs)]`` (e.g. ``(T, W)``)."""
        observations = np.asarray(observations, dtype=np.float32)
        leading = observations.shape[:observations.ndim - len(self.network.inputs[0].shape[1:])]
        return self._values(observations.reshape(-1, *self.network.inputs[0].shape[1:])).numpy().reshape(leading)

    def train(self, observations, returns, epochs, batch_size, learning_rate, rng) -> float:
        """Fit V_i to ``returns`` (one per observation): ``epochs`` shuffled passes of ``batch_size``."""
        observations = np.asarray(observations, dtype=np.float32).reshape(-1, *self.network.inputs[0].shape[1:])
        returns = np.asarray(returns, dtype=np.float32).reshape(-1)
        self.optimizer.learning_rate.assign(learning_rate)
        variables, losses = self.network.trainable_variables, []
        batch_size = _fewest_over_processes(self.communicator, min(batch_size, len(returns)))
        steps = _fewest_over_processes(self.communicator, len(returns) // batch_size)
        for _ in range(epochs):
            order = rng.permutation(len(returns))
            for step in range(steps):
                batch = order[step * batch_size:(step + 1) * batch_size]
                losses.append(_train_step(self._step, self._gradients, self.optimizer, variables, self.communicator,
                                          observations[batch], returns[batch]))
        return float(np.mean(losses)) if losses else float("nan")

    def _variable_groups(self):
        return {"critic": self.network.weights, "critic_optimizer": self.optimizer.variables}

    def get_state(self) -> dict:
        return _arrays_of(self._variable_groups())

    def set_state(self, state):
        _assign_arrays(self._variable_groups(), state)


def _arrays_of(groups) -> dict:
    """``{"<group>/<index>": value}`` of Keras variables, as NumPy copies."""
    return {f"{group}/{index}": np.array(variable) for group, variables in groups.items()
            for index, variable in enumerate(variables)}


def _assign_arrays(groups, state):
    """Assign what :func:`_arrays_of` returned back to the variables, refusing an array of another shape."""
    for group, variables in groups.items():
        for index, variable in enumerate(variables):
            value = np.asarray(state[f"{group}/{index}"])
            if value.shape != tuple(variable.shape):
                raise ValueError(f"The saved array {group}/{index} has shape {value.shape}; the network's has "
                                 f"{tuple(variable.shape)}.")
            variable.assign(value)


def _compiled_step(gradients, optimizer, variables, signature):
    """One compiled call that computes the gradients and applies them (for a single process)."""
    from dexterity_nb.common.quiet_import import tensorflow as tf

    @tf.function(input_signature=signature)
    def step(*batch):
        computed, loss = gradients(*batch)
        optimizer.apply_gradients(zip(computed, variables))
        return loss

    return step


def _train_step(step, gradients, optimizer, variables, communicator, *batch) -> float:
    """One optimiser step on ``batch``; under MPI with the gradient averaged over processes. Returns the loss."""
    if communicator.size == 1:
        return float(step(*batch))
    computed, loss = _averaged_over_processes(communicator, *gradients(*batch), variables)
    optimizer.apply_gradients(zip(computed, variables))
    return float(loss)


def _fewest_over_processes(communicator, count: int) -> int:
    """The smallest ``count`` of all MPI processes (so that each runs as many Allreduces); ``count`` alone."""
    if communicator.size == 1:
        return count
    counts = np.zeros(communicator.size, dtype=np.float32)
    counts[communicator.rank] = count
    return int(round(float(np.min(communicator.average(counts) * communicator.size))))


def _averaged_over_processes(communicator, gradients, loss, variables):
    """The mean of every MPI process's gradients and loss (one Allreduce); as they are with one process.

    Each process computed them on its own states, equally many, so the mean is the gradient over all.
    """
    if communicator.size == 1:
        return gradients, loss
    flat = np.concatenate([np.ravel(gradient) for gradient in gradients] + [[float(loss)]]).astype(np.float32)
    flat = communicator.average(np.ascontiguousarray(flat))
    averaged, offset = [], 0
    for variable in variables:
        size = int(np.prod(variable.shape))
        averaged.append(flat[offset:offset + size].reshape(variable.shape))
        offset += size
    return averaged, flat[-1]


# ---------------------------------------------------------------------- names
INTRINSIC_REWARDS = {
    "rnd": RandomNetworkDistillation,
    "counts": CountBonus,
}


def register_intrinsic_reward(cls=None, *, name: str | None = None, overwrite: bool = False):
    """Register an :class:`IntrinsicReward` subclass under ``name`` (default: its class name).

    A registered name works in ``PPOAgent(..., intrinsic=name)`` and is how a saved agent names
    its intrinsic reward: ``PPOAgent.load`` finds it here and only here. Works as a decorator,
    with or without arguments.
    """
    from dexterity_nb.common.registry import register_class

    if cls is None:
        return lambda actual: register_class(INTRINSIC_REWARDS, actual, name, IntrinsicReward, overwrite, "intrinsic reward")
    return register_class(INTRINSIC_REWARDS, cls, name, IntrinsicReward, overwrite, "intrinsic reward")


def resolve_intrinsic_reward(spec, weight=None) -> IntrinsicReward | None:
    """``None``, a name ("rnd", "counts"), a subclass or an instance → an instance (or ``None``).

    ``weight`` (β), if given, replaces the instance's weight (the CLI's ``--intrinsic-weight``).
    """
    if spec is None:
        if weight is not None:
            raise ValueError("`intrinsic_weight` was given without `intrinsic`; name a bonus, e.g. intrinsic=\"rnd\".")
        return None
    known = ", ".join(repr(name) for name in sorted(INTRINSIC_REWARDS))
    if isinstance(spec, str):
        if spec not in INTRINSIC_REWARDS:
            raise ValueError(f"Unknown intrinsic reward {spec!r}. Known names: {known}; or pass an IntrinsicReward "
                             "subclass or instance (register it with register_intrinsic_reward to save the agent).")
        spec = INTRINSIC_REWARDS[spec]
    if isinstance(spec, type) and issubclass(spec, IntrinsicReward):
        spec = spec() if weight is None else spec(weight=weight)
    elif isinstance(spec, IntrinsicReward):
        if weight is not None:
            raise ValueError("Give β either as the instance's `weight` or as `intrinsic_weight`, not both.")
    else:
        raise TypeError(f"`intrinsic` must be None, a name ({known}), an IntrinsicReward subclass or an instance of one; "
                        f"got {spec!r}.")
    return spec
