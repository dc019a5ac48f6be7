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


# The Keras cells of the recurrent model types, and how many state vectors each carries.
RECURRENT_CELLS = {"rnn": ("SimpleRNNCell", 1), "gru": ("GRUCell", 1), "lstm": ("LSTMCell", 2)}


@keras.saving.register_keras_serializable(package="dexterity_nb")
class ResettingCell(keras.layers.Layer):
    """A Keras recurrent cell (SimpleRNN, GRU or LSTM) whose memory is wiped where an episode begins.

    Wrapped in ``keras.layers.RNN``, it reads at each step the features with one more column, the
    *reset* flag, and first applies

        h ← (1 − reset) · h

    to the state carried in, then steps the cell. That lets one training sequence (a chunk of a
    worker's horizon) cross an episode boundary without the new episode remembering the old one.
    The state is one flat vector per row: an LSTM's (h, c) are concatenated, so the agent carries
    every recurrent network's memory the same way, as ``(batch, state_size)``.
    """

    def __init__(self, cell_type: str, units: int, **kwargs):
        super().__init__(**kwargs)
        if cell_type not in RECURRENT_CELLS:
            raise ValueError(f"`cell_type` must be one of {sorted(RECURRENT_CELLS)}, got {cell_type!r}.")
        self.cell_type, self.units = cell_type, int(units)
        class_name, self.state_vectors = RECURRENT_CELLS[cell_type]
        self.cell = getattr(keras.layers, class_name)(self.units, name=cell_type)
        self.state_size = self.units * self.state_vectors
        self.output_size = self.units

    def build(self, input_shape):
        self.cell.build((input_shape[0], input_shape[-1] - 1))

    def call(self, inputs, states, training=False):
        features, reset = inputs[:, :-1], inputs[:, -1:]
        state = states[0] if isinstance(states, (list, tuple)) else states
        state = state * (1.0 - reset)
        cell_states = ops.split(state, self.state_vectors, axis=-1) if self.state_vectors > 1 else [state]
        output, new_states = self.cell(features, cell_states, training=training)
        new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
        return output, [ops.concatenate(new_states, axis=-1) if len(new_states) > 1 else new_states[0]]

    def get_config(self):
        return {**super().get_config(), "cell_type": self.cell_type, "units": self.units}
