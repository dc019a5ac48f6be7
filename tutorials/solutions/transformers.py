"""Tutorial 03: a transformer that scales rewards by a fixed factor."""

from dexterity_nb.common.transformers import BaseTransformer


class RewardScaleTransformer(BaseTransformer):
    """r ↦ scale · r, for every worker at once."""

    def __init__(self, scale=0.1):
        self.scale = float(scale)

    def transform_reward(self, rewards, episode_ends, update=True):
        return rewards * self.scale

    def config(self):
        return {"scale": self.scale}
