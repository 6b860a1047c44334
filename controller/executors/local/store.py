"""Run records: `$SLUICE_HOME/runs/<run>/run.json`, written atomically after every change.

A record holds the run's phase and times, each task's phase, times, attempts, results, log, and
the paths and sha256 of the artifacts it read and wrote: the lineage from dataset to model to
endpoint. Secrets never reach it (they only exist in step environments).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TaskRecord:
    name: str
    section: str  # tasks | finally
    phase: str = "Pending"  # Pending Running Succeeded Failed Skipped Cancelled
    reason: str = ""  # e.g. Cached, WhenExpressionsFalse, TimedOut, PipelineStopping
    message: str = ""
    cached: bool = False
    attempts: int = 0
    start: float | None = None
    end: float | None = None
    results: dict[str, Any] = field(default_factory=dict)  # a matrixed task's are arrays
    inputs: list[dict[str, str]] = field(default_factory=list)  # {path, sha256}
    artifacts: list[dict[str, str]] = field(default_factory=list)  # {path, sha256, result?}
    log: str = ""  # relative to the run folder
    cache_key: str = ""
    progress: tuple[int, int] | None = None  # (epoch, epochs) while training, or other units' counts
    progress_unit: str = "epoch"  # what `progress` counts (controller.protocol.PROGRESS_UNITS)
    metrics: dict[str, list[float]] = field(default_factory=dict)  # per-epoch values from the log
    display_name: str = ""  # the pipeline task's displayName, substituted
    exit_codes: dict[str, int] = field(default_factory=dict)  # step -> exit code of the last attempt

    @property
    def duration(self) -> float | None:
        if self.start is None:
            return None
        return (self.end or datetime.now(UTC).timestamp()) - self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "section": self.section,
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "cached": self.cached,
            "attempts": self.attempts,
            "startTime": utc(self.start),
            "completionTime": utc(self.end),
            "duration": round(self.duration, 3)
            if self.end is not None and self.duration is not None
            else None,
            "results": self.results,
            "inputs": self.inputs,
            "artifacts": self.artifacts,
            "log": self.log,
            "cacheKey": self.cache_key,
            "metrics": self.metrics,
            "displayName": self.display_name,
            "exitCodes": self.exit_codes,
        }


@dataclass
class RunRecord:
    run: str
    workflow: str
    namespace: str
    folder: Path
    phase: str = "Pending"  # Pending Running Succeeded Failed Cancelled
    reason: str = ""  # Tekton's: Succeeded Completed Failed PipelineRunTimeout Cancelled
    message: str = ""
    start: float | None = None
    end: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "workflow": self.workflow,
            "namespace": self.namespace,
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "startTime": utc(self.start),
            "completionTime": utc(self.end),
            "duration": round(self.end - self.start, 3) if self.start and self.end else None,
            "params": self.params,
            "steps": [t.to_json() for t in self.tasks.values()],
            "outputs": self.outputs,
            "folder": str(self.folder),
        }

    def save(self) -> None:
        write_json_atomic(self.folder / "run.json", self.to_json())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write through a temporary file and rename, so a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def runs_dir(home: Path) -> Path:
    return home / "runs"


def load_run(home: Path, run: str) -> dict[str, Any]:
    """The record of one run; raises FileNotFoundError naming it."""
    path = runs_dir(home) / run / "run.json"
    if "/" in run or run in ("", ".", "..") or not path.is_file():
        raise FileNotFoundError(f"no local run named {run!r} in {runs_dir(home)}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def list_runs(home: Path) -> list[dict[str, Any]]:
    """Every readable run record, newest first."""
    found = []
    folder = runs_dir(home)
    if folder.is_dir():
        for path in folder.glob("*/run.json"):
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
    return sorted(found, key=lambda r: (r.get("startTime") or "", r.get("run", "")), reverse=True)
