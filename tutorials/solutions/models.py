"""Tutorial 05: a small model builder that works for every action space."""

import keras


def build_small(observation_space, distribution, shared, hidden_units=(32, 32)):
    observations = keras.Input(observation_space.shape)

    def hidden_stack(name):
        features = observations
        for index, units in enumerate(hidden_units):
            features = keras.layers.Dense(units, activation="tanh", name=f"{name}_{index}")(features)
        return features

    policy_features = hidden_stack("shared" if shared else "policy")
    value_features = policy_features if shared else hidden_stack("value")
    policy = keras.Model(observations, distribution.build_heads(policy_features))
    value = keras.Model(observations, keras.layers.Dense(1)(value_features))
    return policy, value
