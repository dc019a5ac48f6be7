"""``make_env``: a gymnasium environment with transformers applied, and copies for the workers."""

from __future__ import annotations

import copy
import difflib
from typing import Callable, Sequence

import gymnasium
import numpy as np

from dexterity_nb.common.transformers import BaseTransformer, resolve_transformer

__all__ = ["make_env", "TransformedEnv", "check_env_id"]


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


def make_env(env, transformers=(), seed: int | None = None, **gym_kwargs) -> TransformedEnv:
    """Make a gymnasium environment whose observations and rewards pass through ``transformers``.

    Args:
        env: a registered id (``"CartPole-v1"``), a gymnasium env instance (each worker gets a
            deep copy), or a zero-argument callable that returns a new env.
        transformers: a list of classes, instances or names (``"state"``, ``"reward"``) of
            :mod:`dexterity_nb.common.transformers`, applied in order: ``["state"]``, not ``"state"``.
        seed: ``None`` or an int in [0, 2³² − 1], the seed of the first ``reset``; the agent seeds
            its workers from its own ``seed``.
        **gym_kwargs: passed to ``gymnasium.make`` (for example ``render_mode="rgb_array"``).

    Returns:
        a :class:`TransformedEnv`.

    Raises:
        gymnasium.error.DependencyNotInstalled: the env needs an optional package (Box2D for
            ``LunarLander-v3``); the message names the extra to install.
    """
    instances = [resolve_transformer(t) for t in _check_transformers(transformers)]
    seed = _check_seed(seed)
    if isinstance(env, TransformedEnv):
        raise TypeError("This env is already made by make_env; pass its id or the plain gymnasium env.")
    if isinstance(env, str):
        check_env_id(env)
        env_id = env

        def factory():
            return gymnasium.make(env_id, **gym_kwargs)

        recipe = {"id": env_id, "kwargs": gym_kwargs}
    elif isinstance(env, gymnasium.Env):
        if gym_kwargs:
            raise TypeError(f"gymnasium keyword arguments {sorted(gym_kwargs)} only apply to an env id, not an env instance.")
        template = env

        def factory():
            return copy.deepcopy(template)

        recipe = {"id": env.spec.id, "kwargs": dict(env.spec.kwargs)} if env.spec is not None else None
    elif callable(env):
        factory, recipe = env, None
    else:
        raise TypeError(f"env must be a gymnasium id, a gymnasium.Env or a callable returning one; got {env!r}.")
    try:
        first = factory()
    except gymnasium.error.DependencyNotInstalled as error:
        raise gymnasium.error.DependencyNotInstalled(_missing_dependency_message(env, error)) from error
    return TransformedEnv(first, instances, factory, spec=recipe, seed=seed)


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
