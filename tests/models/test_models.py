import gymnasium
import numpy as np
import pytest

from dexterity_nb.common.policies import Beta, Categorical, Gaussian
from dexterity_nb.models import MODEL_BUILDERS, build_feed_forward, get_model_builder, register_model_builder
from dexterity_nb.models.numpy_forward import NumpyForward

OBSERVATIONS = gymnasium.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def test_unknown_builder_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown model builder \('huge', 'ffn'\). Known: .*'simple'"):
        get_model_builder("huge")


def test_simple_builder_makes_two_tanh_layers_of_64():
    policy, value = get_model_builder("simple", "ffn")(OBSERVATIONS, Categorical(gymnasium.spaces.Discrete(2)))
    hidden = [layer for layer in policy.layers if layer.name.startswith("policy_hidden")]
    assert [layer.units for layer in hidden] == [64, 64]
    assert all(layer.activation.__name__ == "tanh" for layer in hidden)
    assert value.output_shape == (None, 1)


def test_shared_builder_shares_the_trunk():
    policy, value = get_model_builder("simple", "ffn", shared=True)(OBSERVATIONS, Categorical(gymnasium.spaces.Discrete(2)))
    shared = {id(w) for w in policy.trainable_weights} & {id(w) for w in value.trainable_weights}
    assert len(shared) == 4  # two hidden layers' kernels and biases


@pytest.mark.parametrize("builder", ["simple", "deep"])
@pytest.mark.parametrize("distribution", [
    Categorical(gymnasium.spaces.Discrete(3)),
    Gaussian(gymnasium.spaces.Box(-1, 1, (2,), np.float32)),
    Beta(gymnasium.spaces.Box(-1, 1, (2,), np.float32)),
])
def test_numpy_mirror_equals_keras(builder, distribution):
    policy, _ = get_model_builder(builder, "ffn")(OBSERVATIONS, distribution)
    mirror = NumpyForward.mirror(policy)
    assert mirror is not None
    observations = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    expected = policy(observations)
    expected = expected if isinstance(expected, list) else [expected]
    for got, want in zip(mirror(observations), expected):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)


def test_numpy_mirror_declines_unknown_layers():
    import keras

    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.BatchNormalization()(inputs))
    assert NumpyForward.mirror(keras.Model(inputs, outputs)) is None


def test_register_a_custom_builder_by_name():
    @register_model_builder("tiny-test", "ffn", overwrite=True)
    def build_tiny(observation_space, distribution, shared, hidden_units=(8,)):
        return build_feed_forward(observation_space, distribution, shared, hidden_units, "relu")

    try:
        builder = get_model_builder("tiny-test", "ffn", hidden_units=(5,))
        policy, _ = builder(OBSERVATIONS, Categorical(gymnasium.spaces.Discrete(2)))
        assert policy.get_layer("policy_hidden_0").units == 5
        assert builder.config() == {"model": "tiny-test", "model_type": "ffn", "shared": False, "hidden_units": (5,)}
        with pytest.raises(ValueError, match="already registered"):
            register_model_builder("tiny-test", "ffn")(lambda *a: None)
    finally:
        MODEL_BUILDERS.pop(("tiny-test", "ffn"))
