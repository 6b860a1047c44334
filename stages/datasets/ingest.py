"""Ingest a user's data file (for example from a codeset) into a Table.

- CSV: a header row, numeric columns only. `target` names the label column(s), comma-separated;
  without it the last column is the target.
- NPZ: arrays `x` ([rows, features]) and `y` ([rows] or [rows, targets]); optional string arrays
  `feature_names` and `target_names`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from controller.digests import file_sha256
from stages.common import StageError
from stages.datasets.table import Table

MAX_ROWS = 50_000_000


def ingest(source: Path, target: str | None) -> Table:
    if not source.is_file():
        raise StageError(f"source {source} is not a file")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        table = _read_csv(source, target)
    elif suffix == ".npz":
        if target:
            raise StageError("target applies to CSV sources only; an NPZ source has arrays x and y")
        table = _read_npz(source)
    else:
        raise StageError(f"source {source}: expected a .csv or .npz file")
    table.parameters = {"source": str(source), "source_sha256": file_sha256(source)}
    if len(table.x) < 3:
        raise StageError(f"source {source}: {len(table.x)} rows; at least 3 are needed to split")
    return table


def _read_csv(source: Path, target: str | None) -> Table:
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise StageError(f"{source}:1: expected a header with at least two columns")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            raise StageError(f"{source}:1: duplicate column names")
        targets = [t.strip() for t in target.split(",")] if target else [header[-1]]
        unknown = [t for t in targets if t not in header]
        if unknown:
            raise StageError(
                f"{source}:1: no column named {', '.join(unknown)} (columns: {', '.join(header)})"
            )
        rows: list[list[float]] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise StageError(f"{source}:{line_no}: {len(row)} values, the header has {len(header)}")
            try:
                values = [float(v) for v in row]
            except ValueError:
                raise StageError(f"{source}:{line_no}: a value is not a number") from None
            if not all(math.isfinite(v) for v in values):
                raise StageError(f"{source}:{line_no}: NaN or infinite value")
            rows.append(values)
            if len(rows) > MAX_ROWS:
                raise StageError(f"{source}: more than {MAX_ROWS} rows")
    data = np.array(rows, dtype=np.float64).reshape(-1, len(header))
    target_idx = [header.index(t) for t in targets]
    feature_idx = [i for i in range(len(header)) if i not in target_idx]
    if not feature_idx:
        raise StageError(f"{source}: every column is a target; no features left")
    return Table(
        x=data[:, feature_idx],
        y=data[:, target_idx],
        feature_names=[header[i] for i in feature_idx],
        target_names=targets,
    )


def _read_npz(source: Path) -> Table:
    try:
        with np.load(source, allow_pickle=False) as data:
            if "x" not in data.files or "y" not in data.files:
                raise StageError(
                    f"{source}: an NPZ source needs arrays 'x' and 'y' (has {', '.join(data.files)})"
                )
            x = np.asarray(data["x"], dtype=np.float64)
            y = np.asarray(data["y"], dtype=np.float64)
            features = [str(n) for n in data["feature_names"]] if "feature_names" in data.files else None
            targets = [str(n) for n in data["target_names"]] if "target_names" in data.files else None
    except (OSError, ValueError) as exc:
        raise StageError(f"{source}: cannot read: {exc}") from None
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise StageError(f"{source}: x {x.shape} and y {y.shape} must be [rows, n] with the same rows")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise StageError(f"{source}: NaN or infinite values")
    return Table(
        x=x,
        y=y,
        feature_names=features or [f"x{i}" for i in range(x.shape[1])],
        target_names=targets or ([f"y{i}" for i in range(y.shape[1])] if y.shape[1] > 1 else ["y"]),
    )
