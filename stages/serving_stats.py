"""Serving-time feature statistics: what the model server has seen, for the training/serving skew
check (`sluice/evaluate --serving-stats`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

STATS_INTERVAL_SECONDS = 1.0
FOLD_ROWS = 4096  # rows kept before they are folded into the moments (a few numpy calls per fold)


class FeatureStatistics:
    """Streaming mean/co-moment/min/max of served rows (Chan et al.'s pairwise update).

    Rows are kept as they come and folded in blocks: the fold is a dozen numpy calls whatever the
    block size, so folding per request would cost more than the rest of a small request."""

    def __init__(self, names: list[str], path: Path | None, guard: Any = None) -> None:
        n = len(names)
        self.names = names
        self.guard = guard  # the skew guard, whose summary (out-of-range rows, drift) rides along
        self.path = path
        self.count = 0
        self.mean = np.zeros(n)
        self.comoment = np.zeros((n, n))
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.written_at = 0.0
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def add(self, x: np.ndarray) -> None:
        """Count the rows of one model call; write the file if it is due."""
        self.pending.append(x)
        self.pending_rows += len(x)
        if self.pending_rows >= FOLD_ROWS:
            self.fold()
        if self.path is not None:
            now = time.monotonic()
            if now - self.written_at >= STATS_INTERVAL_SECONDS:
                self.written_at = now
                self.write()

    def fold(self) -> None:
        if not self.pending:
            return
        batch = np.concatenate(self.pending).astype(np.float64)
        self.pending, self.pending_rows = [], 0
        m = len(batch)
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        delta = batch_mean - self.mean
        total = self.count + m
        self.comoment += centred.T @ centred + np.outer(delta, delta) * self.count * m / total
        self.mean += delta * m / total
        self.count = total
        self.low = np.minimum(self.low, batch.min(axis=0))
        self.high = np.maximum(self.high, batch.max(axis=0))

    def as_dict(self) -> dict[str, Any]:
        self.fold()
        variance = np.diag(self.comoment) / max(self.count, 1)
        std = np.sqrt(variance)
        scale = np.sqrt(np.outer(np.diag(self.comoment), np.diag(self.comoment)))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(scale > 0, self.comoment / scale, 0.0)
        np.fill_diagonal(corr, 1.0)
        document: dict[str, Any] = {
            "rows": self.count,
            "features": [
                {"name": n, "min": float(lo), "max": float(hi), "mean": float(mu), "std": float(sd)}
                for n, lo, hi, mu, sd in zip(self.names, self.low, self.high, self.mean, std, strict=True)
            ],
            "correlation": [[round(float(v), 6) for v in row] for row in np.clip(corr, -1, 1)],
        }
        if self.guard is not None:
            document["guard"] = self.guard.summary()
        return document

    def write(self) -> None:
        self.fold()
        if self.path is None or self.count == 0:
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.as_dict()), encoding="utf-8")
        os.replace(temporary, self.path)
