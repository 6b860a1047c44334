"""The dataset directory: `data.npz` (one array per split) and `manifest.json`.

Format `sluice.dataset/v1` (docs/stages.md):
- `data.npz`: float32 arrays `x_train`, `y_train`, `x_validation`, `y_validation`, `x_test`,
  `y_test` (features `[rows, F]`, targets `[rows, T]`).
- `manifest.json`: `format`, `sha256` (of the array content, not of the zip file, whose
  timestamps change), `rows` (total and per split), `features`/`targets` (name, min, max, mean,
  std over the training split), `correlation` (features, training split), `generator`,
  `parameters`, `split` (fractions, seed, grouped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stages.common import StageError, read_json, write_json
from stages.datasets.table import Table

FORMAT = "sluice.dataset/v1"
SPLITS = ("train", "validation", "test")


@dataclass
class Dataset:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def x(self, split: str) -> np.ndarray:
        return self.arrays[f"x_{split}"]

    def y(self, split: str) -> np.ndarray:
        return self.arrays[f"y_{split}"]

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]

    @property
    def target_names(self) -> list[str]:
        return [t["name"] for t in self.manifest["targets"]]


def split_indices(
    rows: int, fractions: list[float], seed: int, groups: np.ndarray | None
) -> dict[str, np.ndarray]:
    """A seeded train/validation/test split; whole groups go to one split."""
    rng = np.random.default_rng(seed)
    units = np.unique(groups) if groups is not None else np.arange(rows)
    order = rng.permutation(units)
    counts = [round(f * len(order)) for f in fractions[1:]]
    # A split asked for gets at least one unit (row or trajectory) when there are enough.
    counts = [
        max(c, 1) if f > 0 and len(order) >= 3 else c for c, f in zip(counts, fractions[1:], strict=True)
    ]
    train = len(order) - sum(counts)
    if train < 1:
        raise StageError(f"{len(order)} rows/groups are too few for the split {fractions}")
    parts = np.split(order, [train, train + counts[0]])
    out: dict[str, np.ndarray] = {}
    for name, part in zip(SPLITS, parts, strict=True):
        if groups is None:
            out[name] = np.sort(part)
        else:
            out[name] = np.flatnonzero(np.isin(groups, part))
    return out


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def column_stats(values: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    if len(values) == 0:
        raise StageError("the training split is empty: use more samples or a larger train fraction")
    data = values.astype(np.float64)
    return [
        {
            "name": name,
            "min": float(data[:, i].min()),
            "max": float(data[:, i].max()),
            "mean": float(data[:, i].mean()),
            "std": float(data[:, i].std()),
        }
        for i, name in enumerate(names)
    ]


def correlation(values: np.ndarray) -> list[list[float]]:
    """Pearson correlation of the columns; a constant column correlates 0 with the others."""
    data = values.astype(np.float64)
    centred = data - data.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    scale[scale == 0] = np.inf
    normalised = centred / scale
    matrix = normalised.T @ normalised
    np.fill_diagonal(matrix, 1.0)
    return [[round(float(v), 6) for v in row] for row in np.clip(matrix, -1.0, 1.0)]


def write_dataset(
    directory: Path, table: Table, generator: str, fractions: list[float], seed: int
) -> dict[str, Any]:
    """Split `table`, write `data.npz` and `manifest.json` into `directory`; return the manifest."""
    parts = split_indices(len(table.x), fractions, seed, table.groups)
    arrays: dict[str, np.ndarray] = {}
    for name in SPLITS:
        arrays[f"x_{name}"] = table.x[parts[name]].astype(np.float32)
        arrays[f"y_{name}"] = table.y[parts[name]].astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("data.npz", "manifest.json"):
        (directory / stale).unlink(missing_ok=True)
    np.savez_compressed(directory / "data.npz", **arrays)  # type: ignore[arg-type]
    manifest = {
        "format": FORMAT,
        "sha256": content_sha256(arrays),
        "rows": {"total": len(table.x), **{name: len(parts[name]) for name in SPLITS}},
        "features": column_stats(arrays["x_train"], table.feature_names),
        "targets": column_stats(arrays["y_train"], table.target_names),
        "correlation": correlation(arrays["x_train"]),
        "generator": generator,
        "parameters": table.parameters,
        "split": {"fractions": fractions, "seed": seed, "grouped": table.groups is not None},
    }
    write_json(directory / "manifest.json", manifest)
    return manifest


def read_dataset(directory: Path) -> Dataset:
    """Load and check a dataset directory (the content hash must match the manifest)."""
    if not directory.is_dir():
        raise StageError(f"dataset {directory} is not a directory")
    manifest = read_json(directory / "manifest.json", "dataset manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StageError(f"dataset {directory}: manifest.json is not a {FORMAT} manifest")
    try:
        with np.load(directory / "data.npz") as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise StageError(f"dataset {directory}: cannot read data.npz: {exc}") from None
    missing = [f"{k}_{s}" for s in SPLITS for k in "xy" if f"{k}_{s}" not in arrays]
    if missing:
        raise StageError(f"dataset {directory}: data.npz lacks {', '.join(missing)}")
    if content_sha256(arrays) != manifest.get("sha256"):
        raise StageError(f"dataset {directory}: content does not match the sha256 in manifest.json")
    return Dataset(directory, manifest, arrays)
