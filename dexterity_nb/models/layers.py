"""Keras layers the model builders need beyond Keras's own."""

from dexterity_nb.common.quiet_import import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dexterity_nb")
class StateIndependentLogStd(keras.layers.Layer):
    """A learned log σ per action dimension, the same for every state.

    It takes any batch-first tensor only to know the batch size and returns ``(batch, units)``.
    Keeping σ independent of the state (as Spinning Up and Stable-Baselines3 do) makes the
    exploration noise shrink slowly and evenly as training sharpens the policy.
    """

    def __init__(self, units: int, initial_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        self.log_std = self.add_weight(
            name="log_std", shape=(self.units,), initializer=keras.initializers.Constant(self.initial_value)
        )

    def call(self, inputs):
        return ops.zeros_like(inputs[:, :1]) + self.log_std

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "initial_value": self.initial_value}
