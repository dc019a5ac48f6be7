"""``make_env``: a gymnasium environment with transformers applied, and copies for the workers.

Also ``MaskVelocity``, a gymnasium wrapper that hides the velocities of classic tasks, so that a
policy must infer them from a sequence of observations (the recurrent policies of issue 12):
``make_env("CartPole-v1", mask_velocity=True)``.
"""

from __future__ import annotations

import copy
import difflib
import operator
from typing import Callable, Sequence

import gymnasium
import numpy as np

from dexterity_nb.common.transformers import BaseTransformer, resolve_transformer

__all__ = ["make_env", "TransformedEnv", "check_env_id", "MaskVelocity", "VELOCITY_INDICES", "register_velocity_indices",
           "masks_velocity"]


def check_env_id(env_id: str) -> None:
    """Raise a ``ValueError`` naming close matches if ``env_id`` is not a registered gymnasium id."""
    if ":" in env_id or env_id in gymnasium.registry:  # "module:Env-v0" imports its module on make
        return
    suggestions = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise ValueError(
        f"Unknown environment id {env_id!r}.{hint} "
        "See gymnasium.pprint_registry() for the ids installed here."
    )


class TransformedEnv(gymnasium.Wrapper):
    """A gymnasium env whose observations and rewards pass through transformers.

    Use it like any gymnasium env: ``reset`` and ``step`` return transformed observations and
    rewards, and ``info["original_reward"]`` keeps the reward the task gave. Set ``frozen = True``
    to apply the transformers without updating their statistics (evaluation).

    The agent takes two things from it: the transformers (it keeps its own copies and feeds them
    every worker's data) and ``make_worker_env()``, which builds a fresh, untransformed copy of
    the environment for each worker.
    """

    def __init__(self, env: gymnasium.Env, transformers: Sequence[BaseTransformer],
                 env_factory: Callable[[], gymnasium.Env], spec: dict | None = None, seed=None):
        super().__init__(env)
        self.transformers = list(transformers)
        for transformer in self.transformers:
            transformer.setup(env.observation_space, 1)
        self.make_worker_env = env_factory
        self.recipe = spec  # how to rebuild this env when loading a saved agent (None: unknown)
        self.frozen = False
        self._seed = seed

    def reset(self, *, seed=None, options=None):
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None  # seed only the first episode, as gymnasium does
            self.env.action_space.seed(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        return self._transform_state(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info, original_reward=reward)
        rewards = np.array([reward], dtype=np.float64)
        for transformer in self.transformers:
            rewards = transformer.transform_reward(rewards, np.array([terminated or truncated]), update=not self.frozen)
        return self._transform_state(observation), float(rewards[0]), terminated, truncated, info

    def _transform_state(self, observation):
        states = np.asarray(observation)[None]
        for transformer in self.transformers:
            states = transformer.transform_state(states, update=not self.frozen)
        return states[0]

    def __repr__(self):
        names = ", ".join(repr(t) for t in self.transformers) or "no transformers"
        return f"<TransformedEnv {self.env} with [{names}]>"


def make_env(env, transformers=(), seed: int | None = None, mask_velocity: bool = False, **gym_kwargs) -> TransformedEnv:
    """Make a gymnasium environment whose observations and rewards pass through ``transformers``.

    Args:
        env: a registered id (``"CartPole-v1"``), a gymnasium env instance (each worker gets a
            deep copy), or a zero-argument callable that returns a new env.
        transformers: a list of classes, instances or names (``"state"``, ``"reward"``) of
            :mod:`dexterity_nb.common.transformers`, applied in order: ``["state"]``, not ``"state"``.
        seed: ``None`` or an int in [0, 2³² − 1], the seed of the first ``reset``; the agent seeds
            its workers from its own ``seed``.
        mask_velocity: ``True`` wraps the env (and every worker's copy) in :class:`MaskVelocity`,
            which drops the velocities from the observation: a task only a policy with memory can
            solve well. Known for the ids in ``VELOCITY_INDICES``; add one with
            :func:`register_velocity_indices`. A saved agent records it and loads masked again.
        **gym_kwargs: passed to ``gymnasium.make`` (for example ``render_mode="rgb_array"``).

    Returns:
        a :class:`TransformedEnv`.

    Raises:
        gymnasium.error.DependencyNotInstalled: the env needs an optional package (Box2D for
            ``LunarLander-v3``); the message names the extra to install.
    """
    instances = [resolve_transformer(t) for t in _check_transformers(transformers)]
    seed = _check_seed(seed)
    if not isinstance(mask_velocity, (bool, np.bool_)):
        raise TypeError(f"`mask_velocity` must be True or False, got {mask_velocity!r}; for example "
                        'make_env("CartPole-v1", mask_velocity=True).')
    mask_velocity = bool(mask_velocity)
    if isinstance(env, TransformedEnv):
        raise TypeError("This env is already made by make_env; pass its id or the plain gymnasium env.")
    if isinstance(env, str):
        check_env_id(env)
        if mask_velocity:
            _velocity_indices_of(env)  # an unknown task fails here, before the env is made
        env_id = env

        def factory():
            return gymnasium.make(env_id, **gym_kwargs)

        recipe = {"id": env_id, "kwargs": gym_kwargs, "mask_velocity": mask_velocity}
    elif isinstance(env, gymnasium.Env):
        if gym_kwargs:
            raise TypeError(f"gymnasium keyword arguments {sorted(gym_kwargs)} only apply to an env id, not an env instance.")
        if mask_velocity:
            _check_maskable(env)
        template = env

        def factory():
            return copy.deepcopy(template)

        # An instance already wrapped in MaskVelocity is rebuilt masked too.
        recipe = {"id": env.spec.id, "kwargs": dict(env.spec.kwargs),
                  "mask_velocity": mask_velocity or masks_velocity(env)} if env.spec is not None else None
    elif callable(env):
        factory, recipe = env, None  # a function's env is checked by MaskVelocity when first made
    else:
        raise TypeError(f"env must be a gymnasium id, a gymnasium.Env or a callable returning one; got {env!r}.")
    if mask_velocity:
        unmasked_factory = factory

        def factory():
            return MaskVelocity(unmasked_factory())

    try:
        first = factory()
    except gymnasium.error.DependencyNotInstalled as error:
        raise gymnasium.error.DependencyNotInstalled(_missing_dependency_message(env, error)) from error
    return TransformedEnv(first, instances, factory, spec=recipe, seed=seed)


# ------------------------------------------------------------------ velocity-free tasks
# Positions of the velocities in each task's observation vector (gymnasium's env sources and docs).
VELOCITY_INDICES: dict[str, tuple[int, ...]] = {
    "CartPole-v1": (1, 3),  # cart position, *cart velocity*, pole angle, *pole angular velocity*
    "Pendulum-v1": (2,),  # cos θ, sin θ, *θ̇*
    "MountainCar-v0": (1,),  # position, *velocity*
    "MountainCarContinuous-v0": (1,),
    "Acrobot-v1": (4, 5),  # cos θ₁, sin θ₁, cos θ₂, sin θ₂, *θ̇₁*, *θ̇₂*
    "LunarLander-v3": (2, 3, 5),  # x, y, *ẋ*, *ẏ*, angle, *angular velocity*, left leg, right leg touching
    "LunarLanderContinuous-v3": (2, 3, 5),
}


def register_velocity_indices(env_id: str, indices) -> None:
    """Tell :class:`MaskVelocity` which positions of ``env_id``'s observation vector are velocities.

    ``register_velocity_indices("MyArm-v0", [3, 4, 5])``. Register before making the env, and
    before loading an agent saved on it: a saved agent records only ``mask_velocity=True`` and
    finds the positions here, as it finds classes in the registries.
    """
    if not isinstance(env_id, str) or not env_id:
        raise TypeError(f"`env_id` must be a gymnasium id such as 'CartPole-v1', got {env_id!r}.")
    try:
        positions = [operator.index(index) for index in indices]
    except TypeError:
        positions = None
    if not positions or len(set(positions)) != len(positions) or min(positions) < 0:
        raise ValueError(f"`indices` must be distinct positions ≥ 0 in the observation vector, at least one, got "
                         f"{indices!r}; for example register_velocity_indices({env_id!r}, [1, 3]).")
    VELOCITY_INDICES[env_id] = tuple(sorted(positions))


def masks_velocity(env) -> bool:
    """True if ``env`` or one of the envs it wraps is a :class:`MaskVelocity`."""
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, MaskVelocity):
            return True
        env = env.env
    return False


class MaskVelocity(gymnasium.ObservationWrapper, gymnasium.utils.RecordConstructorArgs):
    """A classic task without its velocities: the observation keeps positions and angles only.

    CartPole-v1 observes (x, ẋ, θ, θ̇); wrapped, it observes (x, θ). A policy that sees one
    observation at a time can no longer tell which way the pole is falling; one with memory (a
    GRU or LSTM over the episode so far) can infer the velocities from successive positions. The
    positions of the velocities are looked up by the env's gymnasium id in ``VELOCITY_INDICES``
    (add a task with :func:`register_velocity_indices`).

    **Dropped, not zeroed.** Stable-Baselines3-contrib's ``MaskVelocityWrapper`` sets the
    velocities to 0 and keeps the shape; here they are removed, and ``observation_space`` is the
    original Box without those components (same dtype, the kept bounds). What a learner sees is
    the truth: the network's input has two numbers for CartPole, not four of which two are always
    0 (which a state normaliser would also divide by a variance of 0). And a checkpoint cannot be
    loaded into the wrong env by accident: a masked agent's first layer and normalisation
    statistics have the smaller shape, so loading it on the unmasked task fails loudly instead of
    feeding velocities into weights that never saw them. A checkpoint records ``mask_velocity``
    with the env's id (see ``checkpoint_schema``), and loading rebuilds the same masking.
    """

    def __init__(self, env: gymnasium.Env):
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.ObservationWrapper.__init__(self, env)
        velocity_indices = _check_maskable(env)
        space = env.observation_space
        self.velocity_indices = velocity_indices
        self.kept_indices = np.array([index for index in range(space.shape[0]) if index not in velocity_indices])
        self.observation_space = gymnasium.spaces.Box(space.low[self.kept_indices], space.high[self.kept_indices],
                                                      dtype=space.dtype)

    def observation(self, observation):
        return np.asarray(observation)[self.kept_indices]


def _velocity_indices_of(env_id) -> tuple[int, ...]:
    if env_id not in VELOCITY_INDICES:
        suggestions = difflib.get_close_matches(str(env_id), list(VELOCITY_INDICES), n=1, cutoff=0.6)
        hint = f" Did you mean {suggestions[0]!r}?" if suggestions else ""
        raise ValueError(
            f"MaskVelocity (make_env's mask_velocity=True) does not know which observation components of "
            f"{env_id!r} are velocities.{hint} It knows {', '.join(VELOCITY_INDICES)}. To add a task, name the "
            f"positions of its velocities in the observation vector first, for example "
            f"register_velocity_indices({env_id!r}, [1, 3]) if positions 1 and 3 are velocities (from "
            f"dexterity_nb.common.wrappers)."
        )
    return VELOCITY_INDICES[env_id]


def _check_maskable(env) -> tuple[int, ...]:
    """The velocity positions of ``env``'s task; raise if it has no known id, is masked already or does not fit."""
    if masks_velocity(env):
        raise ValueError(f"{env} already masks its velocities; wrap it once (or pass mask_velocity=True once).")
    if env.spec is None:
        raise ValueError(
            f"mask_velocity finds the velocities by the env's gymnasium id, but {env} has none (env.spec is None). "
            "Make it with gymnasium.make(id), after gymnasium.register(id=..., entry_point=...) for your own class, "
            "and register_velocity_indices(id, [...]) for its velocities."
        )
    indices = _velocity_indices_of(env.spec.id)
    space = env.observation_space
    if (not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1 or max(indices) >= space.shape[0]
            or len(indices) >= space.shape[0]):
        raise ValueError(
            f"{env.spec.id}'s velocities are registered at positions {list(indices)}, but its observation space is "
            f"{space}; masking needs a flat Box with more than {max(indices)} components, and keeps at least one. "
            f"Check the positions given to register_velocity_indices({env.spec.id!r}, ...)."
        )
    return indices


# ------------------------------------------------------------------ argument checks
def _check_transformers(transformers) -> list:
    """``transformers`` as a list, refusing one transformer (or a name) passed without its list."""
    single = isinstance(transformers, (str, BaseTransformer)) or (
        isinstance(transformers, type) and issubclass(transformers, BaseTransformer))
    try:
        items = None if single else list(transformers)
    except TypeError:
        items = None
    if items is None:
        article = "an" if type(transformers).__name__[0] in "aeiou" else "a"
        raise TypeError(
            f"`transformers` must be a list of transformers (names, classes or instances), got "
            f"{transformers!r} ({article} {type(transformers).__name__}). Put it in a list: "
            'transformers=["state"], transformers=[StateNormalizationTransformer], or transformers=[] for none.'
        )
    return items


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2**32 - 1:
        raise ValueError(
            f"`seed` must be None or an int in [0, 2**32 − 1], got {seed!r}; for example make_env(\"CartPole-v1\", seed=0)."
        )
    return int(seed)  # gymnasium refuses NumPy integers


# Optional dependencies of gymnasium's environments that this package offers as an extra in pyproject.toml.
_EXTRAS = {"box2d": "box2d"}


def _missing_dependency_message(env, error) -> str:
    entry_point = str(gymnasium.registry[env].entry_point) if isinstance(env, str) and env in gymnasium.registry else ""
    name = env if isinstance(env, str) else repr(env)
    for package, extra in _EXTRAS.items():
        if package in entry_point.lower() or package in str(error).lower():
            return (f"{name} needs {package}, which is not installed here ({error}). Install it with dexterity_nb's "
                    f"extra: `pip install -e '.[{extra}]'` in a checkout, or `pip install \"dexterity_nb[{extra}]\"`.")
    return f"{name} needs a package that is not installed here: {error}"
