"""The reward-scale transformer checker (tutorial 03): right transformers pass however they are
written; dividing, fixed scales, in-place changes, scaling states and a forgetful config() fail."""

import pytest
import tensorflow as tf

from dexterity_nb.common.transformers import BaseTransformer
from dexterity_nb.exercises import check_reward_scale_transformer


class RewardScaleTransformer(BaseTransformer):
    def __init__(self, scale=0.1):
        self.scale = float(scale)

    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards * self.scale

    def config(self):
        return {"scale": self.scale}


class RenamedWithLoops(BaseTransformer):
    """Renamed method parameters, a loop, a list result, a stored config."""

    def __init__(self, scale=0.1):
        self.arguments = {"scale": scale}

    def transform_reward(self, r, ends, update=True):
        return [value * self.arguments["scale"] for value in r]

    def config(self):
        return dict(self.arguments)


class WithTensorFlow(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        return tf.constant(rewards) * self.scale


@pytest.mark.parametrize("right", [RewardScaleTransformer, RenamedWithLoops, WithTensorFlow])
def test_transformer_accepts_right_answers(right, verdict):
    passes, output = verdict(check_reward_scale_transformer, right)
    assert passes is True, output


class Dividing(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards / self.scale


class FixedScale(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards * 0.1


class InPlace(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        rewards *= self.scale
        return rewards


class OnlyWhileUpdating(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards * self.scale if update else rewards


class Forgetful(RewardScaleTransformer):
    def config(self):
        return {}


class ConfigUnderAnotherName(RewardScaleTransformer):
    def config(self):
        return {"factor": self.scale}


class ScalingStates(RewardScaleTransformer):
    def transform_state(self, states, update=True):
        return states * self.scale


class Placeholder(RewardScaleTransformer):
    def transform_reward(self, rewards, episode_ends, update=True):
        raise NotImplementedError()


class NotATransformer:
    def __init__(self, scale):
        self.scale = scale


@pytest.mark.parametrize("wrong, words", [
    (Dividing, "do not divide"),
    (FixedScale, "whatever the scale"),
    (InPlace, "changed its argument 1, `rewards`, in place"),
    (OnlyWhileUpdating, "also when update=False"),
    (Forgetful, "config() returned {}"),
    (ConfigUnderAnotherName, "Return the constructor arguments by name"),
    (ScalingStates, "Only rewards"),
    (Placeholder, "Replace `raise NotImplementedError()`"),
    (NotATransformer, "subclass of BaseTransformer"),
])
def test_transformer_rejects_mistakes(wrong, words, verdict):
    passes, output = verdict(check_reward_scale_transformer, wrong)
    assert passes is False
    assert "✗" in output and words in output, output
