"""An in-memory dataset before it is split: features, targets and optional groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Table:
    x: np.ndarray  # [rows, features]
    y: np.ndarray  # [rows, targets]
    feature_names: list[str]
    target_names: list[str]
    # Rows with the same group id land in the same split (one three-body trajectory is one
    # group), so the held-out split never contains a time step of a trajectory seen in training.
    groups: np.ndarray | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # generator parameters and facts

    def __post_init__(self) -> None:
        if self.y.ndim == 1:
            self.y = self.y.reshape(-1, 1)
        if self.x.ndim != 2 or self.y.ndim != 2 or len(self.x) != len(self.y):
            raise ValueError(f"features {self.x.shape} and targets {self.y.shape} do not line up")
        if self.x.shape[1] != len(self.feature_names) or self.y.shape[1] != len(self.target_names):
            raise ValueError("column names do not match the data")
