"""dexterity_nb: learn and teach PPO in Jupyter, with TensorFlow 2 / Keras 3 and gymnasium.

Importing the package is quick and loads no TensorFlow; the names below load on first use::

    from dexterity_nb import PPOAgent, Gatherer, make_env, get_model_builder
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "PPOAgent": "dexterity_nb.agent.ppo_agent",
    "Gatherer": "dexterity_nb.agent.gather",
    "register_gatherer": "dexterity_nb.agent.gather",
    "Callback": "dexterity_nb.agent.callbacks",
    "make_env": "dexterity_nb.common.wrappers",
    "StateNormalizationTransformer": "dexterity_nb.common.transformers",
    "RewardNormalizationTransformer": "dexterity_nb.common.transformers",
    "get_model_builder": "dexterity_nb.models",
    "register_model_builder": "dexterity_nb.models",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dexterity_nb' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
