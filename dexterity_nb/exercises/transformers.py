"""Exercise on transformers (tutorial 03): a fixed reward scale, the simplest reward transformer.

``RewardNormalizationTransformer`` learns the scale from the returns it sees; this one is told the
scale. A transformer receives every worker's rewards at once, shape ``(workers,)``, and must also
say how to rebuild itself (``config()``) so a saved agent can be loaded again.
"""

from __future__ import annotations

import numpy as np

from dexterity_nb.exercises.feedback import Checker, as_array

__all__ = ["check_reward_scale_transformer"]


def check_reward_scale_transformer(transformer_class) -> bool:
    """Check ``transformer_class(scale=...)``: a ``BaseTransformer`` whose ``transform_reward``
    multiplies the rewards by ``scale``, leaves states alone, and whose ``config()`` rebuilds it."""
    from dexterity_nb.common.transformers import BaseTransformer

    checker = Checker("reward-scale transformer")
    if not (isinstance(transformer_class, type) and issubclass(transformer_class, BaseTransformer)):
        return checker.fail("the class itself", f"Expected a subclass of BaseTransformer, got {transformer_class!r}.",
                            hint="Write `class RewardScaleTransformer(BaseTransformer):` and pass the class.")
    for scale in (0.1, 0.01):
        case = f"scale = {scale}, rewards of three workers"
        rewards = np.array([-16.2, -0.5, 3.0])
        inputs = {"scale": scale, "rewards": rewards, "episode_ends": np.array([False, True, False])}
        try:
            transformer = transformer_class(scale=scale)
            original = rewards.copy()
            got = transformer.transform_reward(rewards, inputs["episode_ends"], update=True)
        except Exception as error:  # noqa: BLE001
            return checker.crashed(case, error, inputs)
        if not np.array_equal(rewards, original):
            return checker.fail(case, "Your transform_reward changed the rewards array it was given (in place).", inputs,
                                "Return a new array (rewards * self.scale) instead of modifying `rewards`: the agent "
                                "still needs the original rewards for its statistics.")
        if not checker.compare(case, inputs, original * scale, got,
                               "Multiply every worker's reward by self.scale (keep the shape (workers,))."):
            return False
    case = "states pass through unchanged"
    states = np.array([[0.1, -2.0, 0.3, 1.5], [1.0, 0.0, -0.2, 0.4]])
    try:
        got = transformer_class(scale=0.1).transform_state(states.copy(), update=True)
    except Exception as error:  # noqa: BLE001
        return checker.crashed(case, error, {"states": states})
    if not checker.compare(case, {"states": states}, states, got, "Only rewards are scaled; do not override transform_state."):
        return False
    case = "config() rebuilds the same transformer (needed to save and load an agent)"
    checker.cases += 1
    try:
        config = transformer_class(scale=0.05).config()
        rebuilt = transformer_class(**config)
        got = rebuilt.transform_reward(np.array([2.0]), np.array([False]), update=False)
    except Exception as error:  # noqa: BLE001
        return checker.crashed(case, error, {"scale": 0.05})
    if not np.allclose(as_array(got), [0.1]):
        return checker.fail(case, f"config() returned {config!r}; rebuilt from it, the transformer turns 2.0 into "
                                  f"{as_array(got)} instead of 0.1.", {"scale": 0.05},
                            'Return the constructor arguments: `return {"scale": self.scale}`.')
    return checker.passed()
