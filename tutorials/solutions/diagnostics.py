"""Tutorial 09: the diagnostics practitioners read."""

import numpy as np


def explained_variance(values, returns):
    """1 − Var[R − V] / Var[R]; NaN when all returns are equal (Var[R] = 0)."""
    values = np.asarray(values, dtype=float)
    returns = np.asarray(returns, dtype=float)
    spread = np.var(returns)
    if spread == 0:
        return float("nan")  # nothing to explain: the ratio has no meaning
    return 1.0 - np.var(returns - values) / spread
