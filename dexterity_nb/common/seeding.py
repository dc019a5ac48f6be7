"""The global random streams a seeded agent relies on, in one place: seeding them, and keeping them.

Python's ``random`` (Keras initialisers take their seeds there; custom gatherers may use it), NumPy's
global stream, and Keras's global seed and seed generator (``keras.random`` without a seed). Where
Keras keeps the last two is Keras-internal (``keras.src.backend.common.global_state``); without those
internals, seeding falls back to ``keras.utils.set_random_seed`` and keeping leaves Keras's alone.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

__all__ = ["random_streams_kept", "seed_global_streams"]


def _keras_global_state():
    """Keras's global state and the names of its seed attributes, or ``None`` if Keras moved them."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:
        return None
    return global_state, GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR


def seed_global_streams(seed: int):
    """Seed Python's ``random``, NumPy's global stream and Keras's global seed.

    That is ``keras.utils.set_random_seed`` without TensorFlow's global seed: nothing in the package
    draws TensorFlow random numbers (Keras 3 passes explicit seeds), and setting that seed clears
    TensorFlow's caches, so the functions agents of one architecture share (``agent/update.py``)
    would be prepared again at their next call, ~0.3 s for every agent built.
    """
    keras_state = _keras_global_state()
    if keras_state is None:
        from dexterity_nb.common.quiet_import import keras

        keras.utils.set_random_seed(seed)
        return
    global_state, random_seed, seed_generator = keras_state
    global_state.set_global_attribute(random_seed, seed)
    global_state.set_global_attribute(seed_generator, None)  # rebuilt from the seed when next needed
    random.seed(seed)
    np.random.seed(seed)


@contextlib.contextmanager
def random_streams_kept():
    """Leave Python's ``random`` and Keras's global seed generator as they were: for work (a template's
    networks, an eager check) that the agent's seeded streams must not see."""
    keras_state = _keras_global_state()
    python_state = random.getstate()
    generator = None if keras_state is None else keras_state[0].get_global_attribute(keras_state[2])
    generator_state = None if generator is None else generator.state.numpy()
    try:
        yield
    finally:
        random.setstate(python_state)
        if generator is not None:
            generator.state.assign(generator_state)
        elif keras_state is not None:
            keras_state[0].set_global_attribute(keras_state[2], None)
