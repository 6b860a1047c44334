"""The process behind a local run: its pid file, whether it still runs, cancel requests, detaching.

`runs/<run>/run.pid` holds `{"pid", "start"}`: the process running the run and its start time as
the kernel counts it (`/proc/<pid>/stat` field 22), so a pid reused by another program after a
crash is not taken for the run (a stale pid file). `sluice cancel` writes `runs/<run>/cancel.json`
(`{"finally": true|false}`) and then sends SIGTERM to that process; the run reads the request to
choose between Tekton's two cancellations: `CancelledRunFinally` (running tasks are stopped, the
`finally` tasks still run) and `Cancelled` (everything stops). A request written before the run's
signal handlers exist is honoured when the run starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

PID_FILE = "run.pid"
CANCEL_FILE = "cancel.json"
CONSOLE_FILE = "console.log"  # what a detached `sluice run` prints (progress, summary, errors)


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot); None when there is no such process
    or it is a zombie. Without /proc (not Linux) a live pid answers "" (liveness only)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else fields[19]


def write_pid(run_dir: Path, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{PID_FILE}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "start": process_start(pid)}), encoding="utf-8")
    os.replace(tmp, run_dir / PID_FILE)


def running_pid(run_dir: Path) -> int | None:
    """The pid of the process running this run, if it still runs (None: finished, crashed, or a pid
    file left behind whose pid now belongs to someone else)."""
    try:
        data: Any = json.loads((run_dir / PID_FILE).read_text(encoding="utf-8"))
        pid, start = int(data["pid"]), data.get("start")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    now = process_start(pid)
    if now is None or (start and now and now != start):
        return None
    return pid


def request_cancel(run_dir: Path, pid: int, run_finally: bool) -> None:
    """Ask the run in `pid` to cancel: the request first (so the run reads what kind), then SIGTERM."""
    tmp = run_dir / f".{CANCEL_FILE}.tmp"
    tmp.write_text(json.dumps({"finally": run_finally}), encoding="utf-8")
    os.replace(tmp, run_dir / CANCEL_FILE)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def cancel_requested(run_dir: Path) -> bool | None:
    """None when nobody asked to cancel; else whether the finally tasks are to run."""
    try:
        data: Any = json.loads((run_dir / CANCEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return bool(data.get("finally", True)) if isinstance(data, dict) else True


def detach(run_dir: Path) -> int | None:
    """Fork the calling `sluice run` into the background. In the parent: returns the child's pid once
    its pid file is written. In the child (None): a new session (no terminal, so closing it sends no
    SIGHUP), stdin from /dev/null, stdout and stderr appended to the run's console.log, and SIGTERM
    and SIGINT ignored until the run installs its own handlers (a cancel arriving meanwhile is read
    from its request file when the run starts)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        write_pid(run_dir, pid)
        return pid
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(run_dir / CONSOLE_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    return None
