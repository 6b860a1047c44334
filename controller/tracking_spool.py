"""The MLflow spool of a local run: steps append small JSON records, one logger process logs them.

Standard library only: the stages (which write records), the local executor (which starts the
logger, adds records for cached steps and closes the spool) and the logger (`stages.tracking_logger`)
all import it. Importing MLflow and opening its store costs a step process seconds; with a spool
only the logger pays that, once per run and beside the steps, not in front of them
(docs/mlflow.md, "Cost").

Layout of a spool folder (`$SLUICE_HOME/runs/<run>/mlflow-spool/`, named to a host step by
`SLUICE_MLFLOW_SPOOL`):

- `<time_ns>-<pid>-<n>.json`: a record not yet logged, written whole (a temporary name, then a
  rename), so the logger never reads half a record. Names sort in the order one process wrote them.
- `done/`: records the logger has handled (moved there, never rewritten).
- `logger.pid`: the logger's process id, for a step that waits on it (`sluice/promote`).
- `closed`: written by the executor once every step has ended, holding the run's status
  (FINISHED or FAILED); the logger logs what is left, ends the parent run with it and exits.

A record is `{"kind": ..., "step": ..., "time": <ms since the epoch>, ...}`; the kinds and what
each carries are `stages.tracking_mlflow.Recorder`'s business.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

SPOOL_ENV = "SLUICE_MLFLOW_SPOOL"
SPOOL_DIR = "mlflow-spool"  # in a local run's folder
CLOSED = "closed"
PID_FILE = "logger.pid"
DONE = "done"

_sequence = itertools.count()


def write_record(spool: Path, record: dict[str, Any]) -> Path:
    """Add one record to the spool, atomically (the logger sees all of it or none)."""
    name = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):04d}"
    partial = spool / f".{name}.tmp"
    partial.write_text(json.dumps(record, default=str), encoding="utf-8")
    final = spool / f"{name}.json"
    os.replace(partial, final)
    return final


def pending(spool: Path) -> list[Path]:
    """Records not yet logged, oldest first."""
    return sorted(spool.glob("[0-9]*.json"))


def read_record(path: Path) -> dict[str, Any] | None:
    """A record, or None when it vanished (logged meanwhile) or is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def close(spool: Path, status: str) -> None:
    """No record follows; `status` (FINISHED or FAILED) is the run's, for its MLflow parent run."""
    (spool / CLOSED).write_text(status, encoding="utf-8")


def closing_status(spool: Path) -> str:
    try:
        return (spool / CLOSED).read_text(encoding="utf-8").strip() or "FINISHED"
    except OSError:
        return "FINISHED"


def is_closed(spool: Path) -> bool:
    return (spool / CLOSED).exists()


def logger_alive(spool: Path) -> bool:
    """Whether the logger that owns the spool is still running."""
    try:
        pid = int((spool / PID_FILE).read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


# ---- records of container steps: their paths, as the host sees them ----
# A container step's records name paths as its container sees them (/workspace/artifacts/...).
# In a `sluice run --containers` run the executor writes each step's mounts, container path ->
# folder of this machine, into a folder the containers do not see (MOUNTS_ENV names it to the
# logger), and the logger maps every path of a record through them. A path outside the step's
# mounts, or a folder with a link leading out of them, is refused: a step in a container must not
# make the logger on the host read (and upload) files the container could not see.
MOUNTS_ENV = "SLUICE_MLFLOW_MOUNTS"
MOUNTS_DIR = "mlflow-mounts"  # in a local run's folder, beside the spool
PATH_FIELDS = ("model_dir", "directory")  # the record fields that name a folder (Recorder reads them)


def write_mounts(folder: Path, step: str, mounts: dict[str, str]) -> None:
    """Where the container of `step` (the name its records carry) sees each folder of this machine."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{step}.tmp"
    partial.write_text(json.dumps(mounts, sort_keys=True), encoding="utf-8")
    os.replace(partial, folder / f"{step}.json")


def on_host(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its paths (PATH_FIELDS) mapped through its step's mounts; ValueError when a
    path is not inside one of them."""
    paths = {field: record[field] for field in PATH_FIELDS if isinstance(record.get(field), str)}
    if not paths:
        return record
    step = str(record.get("step", ""))
    try:
        if Path(step).name != step or step.startswith("."):
            raise ValueError
        mounts: dict[str, str] = json.loads((folder / f"{step}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValueError(f"no mounts are known for step {step!r}") from None
    mapped = dict(record)
    for field, inside in paths.items():
        mapped[field] = str(_host_path(inside, mounts))
    return mapped


def _host_path(inside: str, mounts: dict[str, str]) -> Path:
    for path in sorted(mounts, key=len, reverse=True):  # the innermost mount wins, as in the container
        where = path.rstrip("/")
        if inside == where or inside.startswith(where + "/"):
            root = Path(mounts[path]).resolve()
            host = (root / inside[len(where) :].lstrip("/")).resolve()
            if (host != root and root not in host.parents) or _links_out(host, root):
                break
            return host
    raise ValueError(f"{inside} is not inside a folder mounted into the step's container")


def _links_out(folder: Path, root: Path) -> bool:
    """Whether a symbolic link under `folder` leads outside `root`."""
    if not folder.is_dir():
        return False
    for current, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            entry = Path(current) / name
            if entry.is_symlink() and root not in entry.resolve().parents:
                return True
    return False
