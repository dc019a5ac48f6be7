"""The model-builder checker (tutorial 05) judges the models by what they do: right builders written
in different styles pass; fixed heads, bounded value or logit heads, ignored options fail."""

import keras
import pytest

from dexterity_nb.exercises import check_model_builder
from dexterity_nb.models import build_feed_forward, build_simple


# -- right answers -------------------------------------------------------------------------------
def build_small(observation_space, distribution, shared, hidden_units=(32, 32)):
    observations = keras.Input(observation_space.shape)

    def hidden_stack():
        features = observations
        for units in hidden_units:
            features = keras.layers.Dense(units, activation="tanh")(features)
        return features

    policy_features = hidden_stack()
    value_features = policy_features if shared else hidden_stack()
    policy = keras.Model(observations, distribution.build_heads(policy_features))
    value = keras.Model(observations, keras.layers.Dense(1)(value_features))
    return policy, value


def build_renamed_with_sequential_trunks(space, dist, share_trunk, hidden_units=(32, 32)):
    """Sequential stacks, relu, a value head without bias, parameters renamed."""
    inputs = keras.Input(space.shape)
    trunk = keras.Sequential([keras.layers.Dense(units, activation="relu") for units in hidden_units])
    features = trunk(inputs)
    value_features = features if share_trunk else keras.Sequential(
        [keras.layers.Dense(units, activation="relu") for units in hidden_units])(inputs)
    value = keras.layers.Dense(1, use_bias=False)(value_features)
    return keras.Model(inputs, dist.build_heads(features)), keras.Model(inputs, value)


def build_own_logits_head(observation_space, distribution, shared, **options):
    """Its own Dense(n) logits for Categorical (no activation), build_heads otherwise; **options."""
    units = options.get("hidden_units", (32, 32))
    observations = keras.Input(observation_space.shape)
    features = observations
    for size in units:
        features = keras.layers.Dense(size, activation="tanh")(features)
    value_features = features
    if not shared:
        value_features = observations
        for size in units:
            value_features = keras.layers.Dense(size, activation="tanh")(value_features)
    if hasattr(distribution, "n"):
        heads = [keras.layers.Dense(distribution.n)(features)]
    else:
        heads = distribution.build_heads(features)
    return keras.Model(observations, heads), keras.Model(observations, keras.layers.Dense(1)(value_features))


@pytest.mark.parametrize("right", [build_small, build_renamed_with_sequential_trunks, build_own_logits_head])
def test_model_builder_accepts_right_answers(right, verdict):
    passes, output = verdict(check_model_builder, right)
    assert passes is True, output
    assert "✓ model builder: all 7 cases pass" in output


# -- wrong answers -------------------------------------------------------------------------------
def with_value_activation(activation):
    def builder(observation_space, distribution, shared, hidden_units=(32, 32)):
        policy, value = build_small(observation_space, distribution, shared, hidden_units)
        head = keras.layers.Dense(1, activation=activation)(value.layers[-2].output)
        return policy, keras.Model(value.input, head)

    builder.__name__ = f"value_head_with_{activation}"
    return builder


def value_head_with_separate_tanh_layer(observation_space, distribution, shared, hidden_units=(32, 32)):
    policy, value = build_small(observation_space, distribution, shared, hidden_units)
    return policy, keras.Model(value.input, keras.layers.Activation("tanh")(value.outputs[0]))


def softmax_logits(observation_space, distribution, shared, hidden_units=(32, 32)):
    policy, value = build_small(observation_space, distribution, shared, hidden_units)
    if hasattr(distribution, "n"):
        features = policy.layers[-2].output
        policy = keras.Model(policy.input, [keras.layers.Dense(distribution.n, activation="softmax")(features)])
    return policy, value


def fixed_two_logits(observation_space, distribution, shared, hidden_units=(32, 32)):
    inputs = keras.Input(observation_space.shape)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    value_hidden = hidden if shared else keras.layers.Dense(8, activation="tanh")(inputs)
    heads = [keras.layers.Dense(2)(hidden)] * distribution.parameter_count
    return keras.Model(inputs, heads), keras.Model(inputs, keras.layers.Dense(1)(value_hidden))


def value_without_head(observation_space, distribution, shared, hidden_units=(32, 32)):
    inputs = keras.Input(observation_space.shape)
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return keras.Model(inputs, distribution.build_heads(hidden)), keras.Model(inputs, hidden)


def always_shared(observation_space, distribution, shared, hidden_units=(32, 32)):
    return build_small(observation_space, distribution, True, hidden_units)


def never_shared(observation_space, distribution, shared, hidden_units=(32, 32)):
    return build_small(observation_space, distribution, False, hidden_units)


def returning_one_model(observation_space, distribution, shared, hidden_units=(32, 32)):
    return build_small(observation_space, distribution, shared, hidden_units)[0]


def fixed_input_shape(observation_space, distribution, shared, hidden_units=(32, 32)):
    class CartPoleSpace:
        shape = (4,)

    return build_small(CartPoleSpace(), distribution, shared, hidden_units)


def ignoring_hidden_units(observation_space, distribution, shared, hidden_units=(32, 32)):
    return build_small(observation_space, distribution, shared)


def without_hidden_units(observation_space, distribution, shared):
    return build_small(observation_space, distribution, shared)


def placeholder(observation_space, distribution, shared, hidden_units=(32, 32)):
    raise NotImplementedError()


def packaged(observation_space, distribution, shared, hidden_units=(32, 32)):
    return build_simple(observation_space, distribution, shared, hidden_units)


@pytest.mark.parametrize("wrong, words", [
    (with_value_activation("tanh"), "Your value head cannot reach large values"),
    (with_value_activation("relu"), "no activation (no tanh, relu"),
    (with_value_activation("softmax"), "Your value head cannot reach large values"),
    (with_value_activation("sigmoid"), "Your value head cannot reach large values"),
    (value_head_with_separate_tanh_layer, "Your value head cannot reach large values"),
    (softmax_logits, "the distribution applies the softmax itself"),
    (fixed_two_logits, "build_heads"),
    (value_without_head, "Dense(1)"),
    (always_shared, "shared=False"),
    (never_shared, "shared=True"),
    (returning_one_model, "expected the pair (policy, value)"),
    (fixed_input_shape, "keras.Input(observation_space.shape)"),
    (ignoring_hidden_units, "expected hidden layers of 16 and 8"),
    (without_hidden_units, "no parameter `hidden_units`"),
    (placeholder, "Replace `raise NotImplementedError()`"),
    (packaged, "build_feed_forward`, the package's own implementation"),
    (build_feed_forward, "the package's own implementation"),
])
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")  # Keras's own warning on Dense(1, softmax)
def test_model_builder_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_model_builder, wrong)
    assert passes is False
    assert "✗" in output and words in output, output
