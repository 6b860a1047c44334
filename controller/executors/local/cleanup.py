"""Removing local runs: their folders, their MLflow pointers, and the cache they alone used.

A cache entry (`cache/entries/<key>.json`) belongs to every run whose record names its key in a
step's `cacheKey` (the run that stored it and every run that restored it). An entry is removed with
the last run naming it; a content-addressed object (`cache/objects/<aa>/<sha256>`) goes with the
last entry listing it. Entries and objects no run names (written by a run deleted by hand, say) are
left alone: removing them is not what deleting a run asks for.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.executors.local.store import list_runs, runs_dir


@dataclass
class Removed:
    runs: list[str] = field(default_factory=list)
    entries: int = 0
    objects: int = 0
    bytes: int = 0


def _cache_keys(record: dict[str, Any]) -> set[str]:
    return {str(s["cacheKey"]) for s in record.get("steps") or [] if s.get("cacheKey")}


def _entry_objects(entry_path: Path) -> set[str]:
    try:
        entry = json.loads(entry_path.read_text(encoding="utf-8"))
        return {str(f["sha256"]) for out in entry.get("outputs") or [] for f in out.get("files") or []}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def _freed(stat: os.stat_result) -> int:
    """The bytes unlinking a file frees: none while another hard link (run <-> cache object) holds them."""
    return stat.st_size if stat.st_nlink == 1 else 0


def _folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += _freed(os.lstat(os.path.join(root, name)))
            except OSError:
                continue
    return total


def delete_runs(home: Path, names: list[str]) -> Removed:
    """Remove the runs `names` (exact ids) and the cache entries and objects no remaining run uses."""
    doomed = set(names)
    records = list_runs(home)
    kept_keys = set().union(*(_cache_keys(r) for r in records if r.get("run") not in doomed))
    gone_keys = set().union(*(_cache_keys(r) for r in records if r.get("run") in doomed)) - kept_keys
    entries = home / "cache" / "entries"
    all_entries = sorted(entries.glob("*.json")) if entries.is_dir() else []
    kept_objects = set().union(*(_entry_objects(p) for p in all_entries if p.stem not in gone_keys))
    removed = Removed()
    for key in sorted(gone_keys):
        entry = entries / f"{key}.json"
        for sha in _entry_objects(entry) - kept_objects:
            obj = home / "cache" / "objects" / sha[:2] / sha
            try:
                freed = _freed(obj.stat())
                obj.unlink()
                removed.bytes += freed
                removed.objects += 1
            except OSError:
                continue
            kept_objects.add(sha)  # counted once even if listed by two removed entries
        if entry.is_file():
            entry.unlink()
            removed.entries += 1
    for name in names:
        folder = runs_dir(home) / name
        removed.bytes += _folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        (home / "mlflow" / "runs" / f"{name}.json").unlink(missing_ok=True)
        removed.runs.append(name)
    return removed
