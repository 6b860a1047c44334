"""The skew guard of the local model server (docs/serving.md): each request's rows are checked
against the training data's per-feature range, and the served rows of a sliding window are compared
with the training distribution by the population stability index.

Reference: `serving-reference.json` in the model directory (per feature: min, max, mean, std from the
prepare stage's manifest, and the deciles of the training split), else `training-manifest.json`
(min/max/mean/std only: range check, no drift score).

PSI over the last DRIFT_WINDOW rows, ten bins at the training deciles plus one bin below the
training minimum and one above its maximum (expected share 0 there, floored at PSI_FLOOR):
    PSI = sum over bins of (served - expected) * ln(served / expected)
Below 0.1 is read as stable, 0.1-0.25 as drifting, above 0.25 as drifted (the usual thresholds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DRIFT_WINDOW = 1000
PSI_FLOOR = 1e-4
PSI_DRIFTING = 0.1
PSI_DRIFTED = 0.25
REFERENCE_FILE = "serving-reference.json"


def reference_from_training(x_train: np.ndarray, manifest_features: list[dict[str, Any]]) -> dict[str, Any]:
    """The guard's reference for a model directory: range, mean, spread and deciles per feature."""
    data = np.asarray(x_train, dtype=np.float64)
    features = []
    for i, feature in enumerate(manifest_features):
        deciles: Any = np.quantile(data[:, i], np.linspace(0, 1, 11)) if len(data) else []
        features.append(
            {
                **{k: feature[k] for k in ("name", "min", "max", "mean", "std")},
                "deciles": [float(v) for v in deciles],
            }
        )
    return {"rows": len(data), "features": features}


def load_reference(model_dir: Path) -> dict[str, Any] | None:
    for name in (REFERENCE_FILE, "training-manifest.json"):
        try:
            document = json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and isinstance(document.get("features"), list):
            return document
    return None


def drift_state(scores: dict[str, float | None]) -> str:
    known = [s for s in scores.values() if s is not None]
    if not known:
        return "unknown"
    worst = max(known)
    return "drifted" if worst > PSI_DRIFTED else "drifting" if worst > PSI_DRIFTING else "stable"


class SkewGuard:
    """Per request: which rows lie outside the training range. Over the window: PSI per feature."""

    def __init__(self, names: list[str], reference: dict[str, Any] | None) -> None:
        self.names = names
        by_name = {f.get("name"): f for f in (reference or {}).get("features", [])}
        known = [by_name.get(n) for n in names]
        self.active = all(f is not None for f in known)
        nan = float("nan")
        self.low = np.array([f["min"] if f else -np.inf for f in known], np.float32)
        self.high = np.array([f["max"] if f else np.inf for f in known], np.float32)
        self.edges = [f.get("deciles") if f and len(f.get("deciles") or []) == 11 else None for f in known]
        self.bounds = list(zip(self.low.tolist(), self.high.tolist(), strict=True))  # the one-row path
        self.mean = [f["mean"] if f else nan for f in known]
        self.std = [f["std"] if f else nan for f in known]
        self.out_of_range = np.zeros(len(names), np.int64)  # rows outside the range, per feature
        self.flagged_rows = 0
        self.window = np.zeros((DRIFT_WINDOW, len(names)), np.float32)
        self.filled = 0
        self.cursor = 0

    def check(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """None when every row is in range, else (flagged row indices, per-feature outside mask)."""
        self._remember(x)
        if not self.active:
            return None
        if len(x) == 1:  # the usual request: Python compares a few floats ten times faster than numpy
            values = x[0].tolist()  # float32 -> float is exact, so both paths agree (NaN included)
            if all(low <= v <= high or v != v for v, (low, high) in zip(values, self.bounds, strict=True)):
                return None
        outside = (x < self.low) | (x > self.high)
        if not outside.any():
            return None
        rows = np.flatnonzero(outside.any(axis=1))
        self.out_of_range += outside.sum(axis=0)
        self.flagged_rows += len(rows)
        return rows, outside

    def _remember(self, x: np.ndarray) -> None:
        n = len(x)
        if n >= DRIFT_WINDOW:
            self.window[:] = x[-DRIFT_WINDOW:]
            self.cursor, self.filled = 0, DRIFT_WINDOW
            return
        end = self.cursor + n
        if end <= DRIFT_WINDOW:
            self.window[self.cursor : end] = x
        else:
            split = DRIFT_WINDOW - self.cursor
            self.window[self.cursor :] = x[:split]
            self.window[: n - split] = x[split:]
        self.cursor = end % DRIFT_WINDOW
        self.filled = min(DRIFT_WINDOW, self.filled + n)

    def drift(self) -> dict[str, float | None]:
        """PSI per feature over the window (None without deciles or served rows)."""
        scores: dict[str, float | None] = {}
        served = self.window[: self.filled]
        for i, name in enumerate(self.names):
            edges = self.edges[i]
            if edges is None or not len(served):
                scores[name] = None
                continue
            inner = np.asarray(edges[1:-1])
            column = served[:, i]
            bins = np.searchsorted(inner, column, side="right") + 1  # 1..10 inside the deciles
            bins[column < edges[0]] = 0
            bins[column > edges[-1]] = 11
            observed = np.bincount(bins, minlength=12) / len(column)
            expected = np.array([0.0] + [0.1] * 10 + [0.0])
            observed, expected = np.maximum(observed, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
            scores[name] = float(np.sum((observed - expected) * np.log(observed / expected)))
        return scores

    def summary(self) -> dict[str, Any]:
        scores = self.drift()
        return {
            "method": "psi",
            "window_rows": int(self.filled),
            "flagged_rows": int(self.flagged_rows),
            "out_of_range": {n: int(c) for n, c in zip(self.names, self.out_of_range, strict=True)},
            "psi": scores,
            "state": drift_state(scores),
        }


def register_metrics(model: str, guard: SkewGuard) -> None:
    """The guard's Prometheus series (read at scrape time from the guard's counters)."""
    from prometheus_client import REGISTRY
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class GuardCollector:
        def collect(self) -> Any:
            rows = CounterMetricFamily(
                "sluice_out_of_range_rows",
                "Served rows with this feature outside the training range",
                labels=["model_name", "feature"],
            )
            psi = GaugeMetricFamily(
                "sluice_feature_drift_psi",
                f"Population stability index of the last {DRIFT_WINDOW} served rows against the "
                "training deciles",
                labels=["model_name", "feature"],
            )
            for name, count in zip(guard.names, guard.out_of_range, strict=True):
                rows.add_metric([model, name], float(count))
            for name, score in guard.drift().items():
                psi.add_metric([model, name], float("nan") if score is None else score)
            window = GaugeMetricFamily(
                "sluice_drift_window_rows", "Served rows in the drift window", labels=["model_name"]
            )
            window.add_metric([model], float(guard.filled))
            yield rows
            yield psi
            yield window

        def describe(self) -> list[Any]:
            return []

    REGISTRY.register(GuardCollector())
