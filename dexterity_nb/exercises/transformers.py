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
    """Check ``transformer_class(scale)``: a ``BaseTransformer`` whose ``transform_reward`` returns the
    rewards multiplied by ``scale`` (without changing the array it gets, with or without ``update``),
    leaves states alone, and whose ``config()`` rebuilds it. The transformer is built with ``scale``
    by position and its methods are called as the agent calls them."""
    from dexterity_nb.common.transformers import BaseTransformer

    checker = Checker("reward-scale transformer")
    if not (isinstance(transformer_class, type) and issubclass(transformer_class, BaseTransformer)):
        return checker.fail("the class itself", f"Expected a subclass of BaseTransformer, got {transformer_class!r}.",
                            hint="Write `class RewardScaleTransformer(BaseTransformer):` and pass the class.")
    scale_hint = "Multiply every worker's reward by self.scale (keep the shape (workers,))."
    for scale, rewards, update in ((0.1, [-16.2, -0.5, 3.0], True), (0.01, [-16.2, -0.5, 3.0], True),
                                   (2.5, [1.0, -2.0], False)):
        case = f"scale = {scale}, rewards of {len(rewards)} workers, update={update}"
        rewards = np.array(rewards)
        inputs = {"rewards": rewards, "episode_ends": np.array([False, True, False][:len(rewards)])}
        ok, transformer = checker.call(case, transformer_class, {"scale": scale},
                                       "The constructor takes the scale: `def __init__(self, scale=0.1)`.")
        if not ok:
            return False
        ok, got = checker.call(case, transformer.transform_reward, inputs, scale_hint, keywords={"update": update})
        if not ok:
            return False
        mistakes = [(rewards * 0.1, "You multiply by 0.1 whatever the scale: use self.scale."),
                    (rewards / scale, "Multiply by the scale, do not divide.")]
        if not update:
            mistakes.append((rewards, "Scale the rewards also when update=False (evaluation): `update` only says "
                                      "whether running statistics may change, and this transformer has none."))
        if not checker.compare(case, {"scale": scale, **inputs}, rewards * scale, got, scale_hint, mistakes=mistakes):
            return False
    case = "states pass through unchanged"
    states = np.array([[0.1, -2.0, 0.3, 1.5], [1.0, 0.0, -0.2, 0.4]])
    ok, transformer = checker.call(case, transformer_class, {"scale": 0.1})
    if not ok:
        return False
    ok, got = checker.call(case, transformer.transform_state, {"states": states}, keywords={"update": True})
    if not ok:
        return False
    if not checker.compare(case, {"states": states}, states, got, "Only rewards are scaled; do not override transform_state."):
        return False
    case = "config() rebuilds the same transformer (needed to save and load an agent)"
    hint = 'Return the constructor arguments by name: `return {"scale": self.scale}`.'
    ok, config = checker.call(case, lambda scale: transformer_class(scale).config(), {"scale": 0.05}, hint)
    if not ok:
        return False
    checker.cases += 1
    if not isinstance(config, dict):
        return checker.fail(case, f"config() returned {config!r}; expected a dict of constructor arguments.",
                            {"scale": 0.05}, hint)
    ok, got = checker.call(case, lambda rewards: transformer_class(**config).transform_reward(rewards, np.array([False]), update=False),
                           {"rewards": np.array([2.0])}, hint)
    if not ok:
        return False
    if not np.allclose(as_array(got), [0.1]):
        return checker.fail(case, f"config() returned {config!r}; rebuilt from it, the transformer turns 2.0 into "
                                  f"{as_array(got)} instead of 0.1.", {"scale": 0.05}, hint)
    return checker.passed()
