"""Action distributions: how the policy network's outputs become actions and log-probabilities.

Each distribution turns the network's *predicted parameters* (a tuple of arrays, batch first)
into actions. The same formulas serve two callers:

* gathering, on NumPy arrays, where one step must cost microseconds;
* training, on TensorFlow tensors inside a compiled update.

``log_probability`` and ``entropy`` therefore accept either: if any argument is a ``tf.Tensor``
the result is a tensor, otherwise a NumPy array. ``sample`` and ``deterministic`` work on NumPy.

=============  ===================================  =============================================
distribution   predicted parameters                 action
=============  ===================================  =============================================
Categorical    logits ``(B, n)``                    ``int`` in ``range(n)``
Gaussian       mean ``(B, d)``, log σ ``(B, d)``    ``float`` vector, unbounded (clipped to the
                                                    Box bounds only when the env is stepped)
Beta           α ``(B, d)``, β ``(B, d)`` (> 1)     ``float`` vector inside the Box bounds
=============  ===================================  =============================================

To add a distribution, subclass :class:`Distribution`, implement the five methods and
``build_heads``, give it a ``name``, and register it with :func:`register_distribution`
(``get_distribution`` and ``PPOAgent.load`` find distributions by that name, and only there).
"""

from __future__ import annotations

import functools
import math

import gymnasium
import numpy as np

__all__ = ["Distribution", "Categorical", "Gaussian", "Beta", "DISTRIBUTIONS", "register_distribution", "get_distribution"]

_LOG_TWO_PI = math.log(2.0 * math.pi)


def _is_tensor(value) -> bool:
    # TensorFlow is only imported by code that already made a tensor, so this never imports it.
    return type(value).__module__.startswith(("tensorflow", "keras"))


def _accepts_eager_tensors(method):
    """Compute on NumPy when the tensors are eager (outside tf.function) and return a tensor.

    A custom gatherer may pass a tensor for one action per step (the founding tutorial does);
    a dozen eager TensorFlow ops would cost ~0.3 ms there, the NumPy formula a few µs. Inside a
    compiled function the tensors are symbolic and the TensorFlow formula runs as written; so it
    does whenever a ``GradientTape`` is recording (the update under
    ``tf.config.run_functions_eagerly(True)``, or a learner's own eager experiment), since a
    detour through NumPy would cut the gradient.
    """

    @functools.wraps(method)
    def wrapper(self, *arrays):
        if not any(_is_tensor(array) for array in arrays) or not all(
            hasattr(array, "numpy") for array in arrays if _is_tensor(array)
        ):
            return method(self, *arrays)
        import tensorflow as tf

        if not tf.executing_eagerly() or _gradient_tape_may_record():
            return method(self, *arrays)
        result = method(self, *[array.numpy() if _is_tensor(array) else array for array in arrays])
        return tf.constant(result, dtype=tf.float32)

    return wrapper


def _gradient_tape_may_record() -> bool:
    """True if a ``tf.GradientTape`` could be recording now (then only TensorFlow ops may run)."""
    try:
        from tensorflow.python.eager import record  # no public equivalent in TensorFlow 2.21
    except ImportError:  # moved in another TensorFlow version: keep gradients, lose only speed
        return True
    return record.could_possibly_record()


class _NumpyMath:
    """The handful of array functions the formulas need, on NumPy."""

    log, exp, square, maximum = np.log, np.exp, np.square, np.maximum  # ufuncs: not bound as methods
    sum = staticmethod(np.sum)
    lgamma = staticmethod(np.frompyfunc(math.lgamma, 1, 1))

    @staticmethod
    def asarray(value):
        return np.asarray(value, dtype=np.float64)

    constant = asarray

    @staticmethod
    def log_softmax(logits):
        shifted = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
        return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))

    @staticmethod
    def take(rows, indices):
        return rows[np.arange(len(rows)), np.asarray(indices, dtype=np.int64).reshape(-1)]

    @staticmethod
    def digamma(value):
        from dexterity_nb.common.quiet_import import tensorflow as tf  # the only NumPy formula without a NumPy function; entropy is not on the hot path
        return tf.math.digamma(tf.constant(value, dtype=tf.float64)).numpy()


class _TensorMath:
    """The same functions on TensorFlow tensors (imported on first use)."""

    def __init__(self):
        from dexterity_nb.common.quiet_import import tensorflow as tf

        self.tf = tf
        self.log, self.exp, self.square = tf.math.log, tf.math.exp, tf.math.square
        self.maximum, self.lgamma, self.digamma = tf.math.maximum, tf.math.lgamma, tf.math.digamma
        self.log_softmax = tf.nn.log_softmax

    def asarray(self, value):
        return self.tf.cast(value, self.tf.float32)

    def constant(self, value):
        return self.tf.constant(value, dtype=self.tf.float32)

    def sum(self, value, axis):
        return self.tf.reduce_sum(value, axis=axis)

    def take(self, rows, indices):
        indices = self.tf.reshape(self.tf.cast(indices, self.tf.int32), [-1])
        return self.tf.gather(rows, indices, batch_dims=1)


_numpy_math = _NumpyMath()
_tensor_math = None


def _math_for(*values):
    global _tensor_math
    if any(_is_tensor(value) for value in values):
        if _tensor_math is None:
            _tensor_math = _TensorMath()
        return _tensor_math
    return _numpy_math


_ROW_INDICES: dict = {}


def _row_indices(rows: int) -> np.ndarray:
    """``np.arange(rows)``, kept: gathering indexes one row per worker at every step."""
    indices = _ROW_INDICES.get(rows)
    if indices is None:
        indices = _ROW_INDICES[rows] = np.arange(rows)
        indices.flags.writeable = False
    return indices


def _rows(rng, batch):
    """One random generator per row: a single generator serves every row, a list gives each its own."""
    if isinstance(rng, (list, tuple)):
        if len(rng) != batch:
            raise ValueError(f"Got {len(rng)} random generators for a batch of {batch}.")
        return rng
    rng = rng if rng is not None else np.random.default_rng()
    return [rng] * batch


class Distribution:
    """Base class. ``action_space`` is the gymnasium space the actions belong to."""

    name = "distribution"
    parameter_count = 1  # how many arrays the policy network predicts

    def __init__(self, action_space: gymnasium.Space):
        self.action_space = action_space

    def build_heads(self, features):
        """Keras layers that map the last hidden features to the predicted parameters (a list)."""
        raise NotImplementedError

    def sample(self, *parameters, rng=None):
        """Draw one action per row. ``rng``: a NumPy Generator, or a list of one per row."""
        raise NotImplementedError

    def log_probability(self, actions, *parameters):
        """log π(a | parameters) for each row: shape ``(B,)``."""
        raise NotImplementedError

    def sample_with_log_probability(self, *parameters, rng=None):
        """``(actions, log π(actions))`` in one go: what every gathering step needs."""
        actions = self.sample(*parameters, rng=rng)
        return actions, self.log_probability(actions, *parameters)

    def draw_noise(self, rngs, steps: int):
        """The random numbers of the next ``steps`` calls of :meth:`sample_with_log_probability`
        with ``rng=rngs`` (one generator per row), drawn now: an array ``(steps, rows, ...)`` whose
        row ``t`` goes to :meth:`sample_with_noise`; or ``None``, the default, for a distribution
        that draws while it samples.

        Gathering draws a cycle's noise up front where it can: one call per worker instead of one
        per worker and step. Each generator ends where the step-by-step draws would leave it, so
        the actions are the same numbers either way.
        """
        return None

    def sample_with_noise(self, noise, *parameters):
        """``(actions, log π(actions))`` from one step's rows of :meth:`draw_noise`."""
        raise NotImplementedError(f"{type(self).__name__}.draw_noise returned noise, so it needs sample_with_noise too.")

    def entropy(self, *parameters):
        """H[π(· | parameters)] for each row: shape ``(B,)``."""
        raise NotImplementedError

    def deterministic(self, *parameters):
        """One fixed action per row for evaluation (``deterministic=True``); each subclass says which.

        Categorical: the most likely action (argmax of the logits). Gaussian: the mean, which is
        also the most likely action. Beta: the mean, which is *not* the most likely action.
        """
        raise NotImplementedError

    def env_actions(self, actions):
        """What is sent to the workers' envs for a batch of actions (one row per worker)."""
        return actions

    def config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}({self.action_space})"


class Categorical(Distribution):
    """π(a) = softmax(logits)_a over a ``Discrete(n)`` space.

    log π(a) = logits_a − log Σ_j exp(logits_j);  H = −Σ_a π(a) log π(a).
    """

    name = "categorical"

    def __init__(self, action_space):
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise TypeError(f"Categorical needs a Discrete action space, got {action_space}.")
        super().__init__(action_space)
        self.n = int(action_space.n)
        self.start = int(action_space.start)

    def build_heads(self, features):
        import keras

        return [keras.layers.Dense(self.n, kernel_initializer=keras.initializers.Orthogonal(0.01), name="logits")(features)]

    def sample(self, logits, rng=None):
        return self.sample_with_log_probability(logits, rng=rng)[0]

    def sample_with_log_probability(self, logits, rng=None):
        uniforms = np.array([generator.random() for generator in _rows(rng, len(logits))])
        return self.sample_with_noise(uniforms, logits)

    def draw_noise(self, rngs, steps):
        if type(self).sample_with_log_probability is not Categorical.sample_with_log_probability:
            return None  # a subclass samples its own way
        return np.stack([generator.random(steps) for generator in rngs], axis=1)  # one uniform per row and step

    def sample_with_noise(self, uniforms, logits):
        """Inverse-CDF sampling: the action is the first index whose cumulative probability exceeds u ~ U[0, 1)."""
        log_probabilities = _numpy_math.log_softmax(np.asarray(logits, dtype=np.float64))
        # Runs at every gathering step: ufunc methods in place of the array methods' Python wrappers.
        indices = np.add.reduce(np.exp(log_probabilities).cumsum(axis=-1) <= uniforms[:, None], axis=-1)
        np.minimum(indices, self.n - 1, out=indices)  # a cumulative sum that rounds to just below 1
        chosen = log_probabilities[_row_indices(len(indices)), indices]
        return (indices + self.start if self.start else indices), chosen

    @_accepts_eager_tensors
    def log_probability(self, actions, logits):
        math_ = _math_for(actions, logits)
        log_probabilities = math_.log_softmax(math_.asarray(logits))
        return math_.take(log_probabilities, actions - self.start if self.start else actions)

    @_accepts_eager_tensors
    def entropy(self, logits):
        math_ = _math_for(logits)
        log_probabilities = math_.log_softmax(math_.asarray(logits))
        return -math_.sum(math_.exp(log_probabilities) * log_probabilities, axis=-1)

    def deterministic(self, logits):
        """The most likely action: argmax of the logits (the mode)."""
        return np.argmax(np.asarray(logits), axis=-1) + self.start

    def env_actions(self, actions):
        # Python ints: gymnasium's Discrete.contains (asserted at every CartPole step) is ~3x
        # faster for an int than for a NumPy integer.
        return np.asarray(actions, dtype=np.int64).tolist()


class _BoxDistribution(Distribution):
    def __init__(self, action_space):
        if not isinstance(action_space, gymnasium.spaces.Box):
            raise TypeError(f"{type(self).__name__} needs a Box action space, got {action_space}.")
        if len(action_space.shape) != 1:
            raise ValueError(f"{type(self).__name__} supports 1-D Box action spaces; got shape {action_space.shape}. Reshape the actions with a gymnasium ActionWrapper.")
        super().__init__(action_space)
        self.shape = action_space.shape
        self.size = int(np.prod(self.shape))
        self.low = action_space.low.astype(np.float64).reshape(-1)
        self.high = action_space.high.astype(np.float64).reshape(-1)

    def env_actions(self, actions):
        actions = np.asarray(actions, dtype=self.action_space.dtype).reshape((-1, *self.shape))
        return np.clip(actions, self.action_space.low, self.action_space.high)


class Gaussian(_BoxDistribution):
    """A diagonal Gaussian with a state-independent log σ (one learned value per action dimension).

    log π(a) = −½ Σ_i [((a_i − μ_i) / σ_i)² + 2 log σ_i + log 2π]
    H        =  Σ_i [log σ_i + ½ (1 + log 2π)]

    Samples are unbounded; the env receives them clipped to the Box bounds, while the
    log-probability is that of the unclipped sample (as in Stable-Baselines3).
    """

    name = "gaussian"
    parameter_count = 2

    def __init__(self, action_space, initial_log_std: float = 0.0):
        super().__init__(action_space)
        self.initial_log_std = float(initial_log_std)

    def build_heads(self, features):
        import keras

        from dexterity_nb.models.layers import StateIndependentLogStd

        mean = keras.layers.Dense(self.size, kernel_initializer=keras.initializers.Orthogonal(0.01), name="mean")(features)
        log_std = StateIndependentLogStd(self.size, self.initial_log_std, name="log_std")(mean)
        return [mean, log_std]

    def sample(self, mean, log_std, rng=None):
        noise = np.stack([generator.standard_normal(self.size) for generator in _rows(rng, len(mean))])
        return self._shifted(noise, mean, log_std)

    @staticmethod
    def _shifted(noise, mean, log_std):
        """a = μ + σ ε, with ε ~ N(0, I)."""
        return np.asarray(mean, dtype=np.float64) + np.exp(np.asarray(log_std, dtype=np.float64)) * noise

    def draw_noise(self, rngs, steps):
        cls = type(self)
        if cls.sample is not Gaussian.sample or cls.sample_with_log_probability is not Distribution.sample_with_log_probability:
            return None  # a subclass samples its own way
        return np.stack([generator.standard_normal((steps, self.size)) for generator in rngs], axis=1)

    def sample_with_noise(self, noise, mean, log_std):
        actions = self._shifted(noise, mean, log_std)
        return actions, self.log_probability(actions, mean, log_std)

    @_accepts_eager_tensors
    def log_probability(self, actions, mean, log_std):
        math_ = _math_for(actions, mean, log_std)
        actions, mean, log_std = math_.asarray(actions), math_.asarray(mean), math_.asarray(log_std)
        z = (actions - mean) / math_.exp(log_std)
        return -0.5 * math_.sum(math_.square(z) + 2.0 * log_std + _LOG_TWO_PI, axis=-1)

    @_accepts_eager_tensors
    def entropy(self, mean, log_std):
        math_ = _math_for(log_std)
        return math_.sum(math_.asarray(log_std) + 0.5 * (1.0 + _LOG_TWO_PI), axis=-1)

    def deterministic(self, mean, log_std):
        """The mean μ, which for a Gaussian is also the most likely action (the mode)."""
        return np.asarray(mean)

    def config(self):
        return {"name": self.name, "initial_log_std": self.initial_log_std}


class Beta(_BoxDistribution):
    """A Beta distribution per action dimension, stretched onto the Box bounds [low, high].

    With y = (a − low) / (high − low) ∈ (0, 1) and B(α, β) = Γ(α)Γ(β)/Γ(α+β):

    log π(a) = Σ_i [(α_i − 1) log y_i + (β_i − 1) log(1 − y_i) − log B(α_i, β_i) − log(high_i − low_i)]
    H        = Σ_i [log B(α_i, β_i) − (α_i − 1) ψ(α_i) − (β_i − 1) ψ(β_i) + (α_i + β_i − 2) ψ(α_i + β_i)
                    + log(high_i − low_i)]

    The heads predict α, β > 1 (softplus + 1) so every action dimension is unimodal. Actions never
    leave the bounds, which suits tasks whose best actions lie at the limits (Chou et al., 2017).
    """

    name = "beta"
    parameter_count = 2
    _edge = 1e-6  # keeps log y and log(1 − y) finite for actions exactly at the bounds

    def __init__(self, action_space):
        super().__init__(action_space)
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError(f"Beta needs finite Box bounds, got low={self.low}, high={self.high}; use Gaussian.")
        self.log_width = np.log(self.high - self.low)

    def build_heads(self, features):
        import keras

        heads = []
        for name in ("alpha", "beta"):
            raw = keras.layers.Dense(self.size, activation="softplus", kernel_initializer=keras.initializers.Orthogonal(0.01), name=f"{name}_softplus")(features)
            heads.append(keras.layers.Rescaling(scale=1.0, offset=1.0, name=name)(raw))
        return heads

    def sample(self, alpha, beta, rng=None):
        alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
        generators = _rows(rng, len(alpha))
        unit = np.stack([generator.beta(a, b) for generator, a, b in zip(generators, alpha, beta)])
        return self.low + (self.high - self.low) * unit

    @_accepts_eager_tensors
    def log_probability(self, actions, alpha, beta):
        math_ = _math_for(actions, alpha, beta)
        actions, alpha, beta = math_.asarray(actions), math_.asarray(alpha), math_.asarray(beta)
        unit = (actions - math_.constant(self.low)) / math_.constant(self.high - self.low)
        unit = math_.maximum(unit, self._edge)
        unit = -math_.maximum(-unit, self._edge - 1.0)  # min(unit, 1 − edge)
        log_beta_function = self._lgamma(math_, alpha) + self._lgamma(math_, beta) - self._lgamma(math_, alpha + beta)
        per_dimension = (alpha - 1.0) * math_.log(unit) + (beta - 1.0) * math_.log(1.0 - unit) - log_beta_function
        return math_.sum(per_dimension, axis=-1) - float(self.log_width.sum())

    @_accepts_eager_tensors
    def entropy(self, alpha, beta):
        math_ = _math_for(alpha, beta)
        alpha, beta = math_.asarray(alpha), math_.asarray(beta)
        log_beta_function = self._lgamma(math_, alpha) + self._lgamma(math_, beta) - self._lgamma(math_, alpha + beta)
        per_dimension = (
            log_beta_function
            - (alpha - 1.0) * math_.digamma(alpha)
            - (beta - 1.0) * math_.digamma(beta)
            + (alpha + beta - 2.0) * math_.digamma(alpha + beta)
        )
        return math_.sum(per_dimension, axis=-1) + float(self.log_width.sum())

    def deterministic(self, alpha, beta):
        """The mean, low + (high − low) · α / (α + β), stretched onto the bounds.

        Not the most likely action: the mode of a Beta is (α − 1) / (α + β − 2), which differs
        from the mean unless α = β (e.g. α = 2, β = 5: mean 0.29, mode 0.2 on [0, 1]).
        """
        alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
        return self.low + (self.high - self.low) * alpha / (alpha + beta)

    @staticmethod
    def _lgamma(math_, value):
        result = math_.lgamma(value)
        return result.astype(np.float64) if isinstance(result, np.ndarray) else result


DISTRIBUTIONS = {"categorical": Categorical, "gaussian": Gaussian, "beta": Beta}


def register_distribution(cls, overwrite: bool = False):
    """Register a :class:`Distribution` subclass under its ``name`` attribute.

    The name is what ``get_distribution(action_space, name)`` accepts and what a saved agent
    stores: ``PPOAgent.load`` finds the class here and only here (a file never makes dexterity_nb
    import a module). Returns ``cls``, so it also works as a decorator. A name taken by another
    class raises (a subclass inherits its parent's ``name``: give it its own), unless
    ``overwrite=True`` or the class is the same cell's class redefined (same module and qualname).
    """
    from dexterity_nb.common.registry import register_class

    return register_class(DISTRIBUTIONS, cls, getattr(cls, "name", None), Distribution, overwrite, "distribution")


def get_distribution(action_space, distribution=None, **options) -> Distribution:
    """The distribution for ``action_space``: Discrete → Categorical, Box → Gaussian by default.

    ``distribution`` may be a name from ``DISTRIBUTIONS`` ("categorical", "gaussian", "beta"),
    a :class:`Distribution` subclass, or an instance (returned unchanged).
    """
    if isinstance(distribution, Distribution):
        return distribution
    if distribution is None:
        if isinstance(action_space, gymnasium.spaces.Discrete):
            return Categorical(action_space)
        if isinstance(action_space, gymnasium.spaces.Box):
            return Gaussian(action_space, **options)
        raise TypeError(
            f"No default distribution for the action space {action_space}: dexterity_nb supports "
            "Discrete and Box actions. Wrap the env (e.g. gymnasium.wrappers.FlattenObservation for "
            "observations, or a custom ActionWrapper) to use one of these."
        )
    if isinstance(distribution, str):
        if distribution.lower() not in DISTRIBUTIONS:
            raise ValueError(f"Unknown distribution {distribution!r}. Known: {', '.join(DISTRIBUTIONS)}.")
        distribution = DISTRIBUTIONS[distribution.lower()]
    if isinstance(distribution, type) and issubclass(distribution, Distribution):
        return distribution(action_space, **options)
    raise TypeError(f"distribution must be a name, a Distribution subclass or instance; got {distribution!r}.")
