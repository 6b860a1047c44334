"""The FuseML article's example: learn x1 + x2.

`sum-of-two` draws independent pairs over [low, high) -- the fix. `sum-of-two-equal-pairs`
draws (i, i) only, like the article's data: a network fitted to it learns some w1*x1 + w2*x2
with w1 + w2 = 2 (it cannot tell the inputs apart), which is right on equal pairs and wrong
on every unequal pair a user sends at serving time.
"""

from __future__ import annotations

import numpy as np

from stages.datasets.table import Table

FEATURES = ["x1", "x2"]
TARGETS = ["sum"]


def generate(samples: int, low: float, high: float, seed: int, equal_pairs: bool) -> Table:
    rng = np.random.default_rng(seed)
    if equal_pairs:
        i = rng.uniform(low, high, size=samples)
        x = np.stack([i, i], axis=1)
    else:
        x = rng.uniform(low, high, size=(samples, 2))
    return Table(
        x=x,
        y=truth(x),
        feature_names=list(FEATURES),
        target_names=list(TARGETS),
        parameters={"samples": samples, "low": low, "high": high, "seed": seed, "equal_pairs": equal_pairs},
    )


def truth(x: np.ndarray) -> np.ndarray:
    """The exact answer for any input rows (used for out-of-range probes)."""
    return np.asarray(x, dtype=np.float64).sum(axis=1, keepdims=True)
