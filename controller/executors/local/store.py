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

from controller.executors.local import runprocess
from controller.runref import RunRefError, RunWords, pick_run


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(kw_only=True)
class Status:
    """What Tekton's status says of a run and of each of its TaskRuns: phase, reason, message and
    the start and end (epoch seconds)."""

    phase: str = "Pending"  # a run: Pending Running Succeeded Failed Cancelled; a task also Skipped
    reason: str = ""  # Tekton's: Succeeded Completed Failed PipelineRunTimeout Cancelled, a task's
    # also Cached, WhenExpressionsFalse, TimedOut, PipelineStopping
    message: str = ""
    start: float | None = None
    end: float | None = None

    def status_json(self) -> dict[str, Any]:
        """The status as run.json holds it: times in UTC to the second, the duration once ended."""
        start, end = self.start, self.end
        return {
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "startTime": utc(start),
            "completionTime": utc(end),
            "duration": round(end - start, 3) if start is not None and end is not None else None,
        }


@dataclass
class TaskRecord(Status):
    name: str
    section: str  # tasks | finally
    cached: bool = False
    attempts: int = 0
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
            **self.status_json(),
            "cached": self.cached,
            "attempts": self.attempts,
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
class RunRecord(Status):
    run: str
    workflow: str
    namespace: str
    folder: Path
    params: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # e.g. MLflow logging that failed

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "workflow": self.workflow,
            "namespace": self.namespace,
            **self.status_json(),
            "startTimestamp": self.start,  # startTime to the second is too coarse to order runs
            "params": self.params,
            "steps": [t.to_json() for t in self.tasks.values()],
            "outputs": self.outputs,
            "warnings": self.warnings,
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


RunLookupError = RunRefError  # what find_run raises (the shared RUN rule's error)
ACTIVE_PHASES = ("Pending", "Running")


def _read(run_dir: Path) -> dict[str, Any] | None:
    """A run record as it stands: `folder` is where it is now (a home can move), and a run left
    Pending or Running by a process that is gone (killed, crashed) reads as Failed, saying so."""
    try:
        data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data["folder"] = str(run_dir)
    pid_file = run_dir / runprocess.PID_FILE
    if data.get("phase") in ACTIVE_PHASES and pid_file.exists() and runprocess.running_pid(run_dir) is None:
        console = run_dir / runprocess.CONSOLE_FILE
        where = f"; its output: {console}" if console.is_file() else ""
        data["phase"] = "Failed"
        data["message"] = f"the sluice process running it ended before the run did{where}"
    return data


def load_run(home: Path, run: str) -> dict[str, Any]:
    """The record of one run, by its exact id; raises FileNotFoundError naming it."""
    data = None if "/" in run or run in ("", ".", "..") else _read(runs_dir(home) / run)
    if data is None:
        raise FileNotFoundError(f"no local run named {run!r} in {runs_dir(home)}")
    return data


def list_runs(home: Path, workflow: str | None = None) -> list[dict[str, Any]]:
    """Every readable run record (of `workflow`, if given), newest first."""
    found = []
    folder = runs_dir(home)
    if folder.is_dir():
        for path in folder.iterdir():
            data = _read(path)
            if data is not None and (workflow is None or data.get("workflow") == workflow):
                found.append(data)
    return sorted(found, key=_newest_first)


def _newest_first(record: dict[str, Any]) -> tuple[float, str]:
    started = record.get("startTimestamp")
    if not isinstance(started, int | float):  # a record written before startTimestamp existed
        text = record.get("startTime")
        try:
            started = datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            started = 0.0
    return (-float(started), str(record.get("run", "")))


def find_run(home: Path, ref: str, workflow: str | None = None) -> dict[str, Any]:
    """The run a user means by `ref`: its exact id, `latest` (the newest by start time, of
    `workflow` if given) or a unique prefix of an id. Raises RunLookupError otherwise."""
    records = list_runs(home, workflow)
    of = f" of workflow {workflow!r}" if workflow else ""
    words = RunWords(
        empty=f"no local runs{of} in {runs_dir(home)}",
        missing=lambda ref: f"no local run{of} is {ref} or starts with it, in {runs_dir(home)}",
        plural="runs",
        part="id",
    )
    return records[pick_run(ref, [str(r.get("run", "")) for r in records], words)]
