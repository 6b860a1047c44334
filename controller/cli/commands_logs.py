"""`sluice logs RUN [STEP] [-f]` and `sluice cancel RUN`: a local run from another shell.

A step here is what the run summary lists (a pipeline task); its log is `runs/<run>/logs/<task>.log`,
written line by line through the executor's Redactor as the steps print. Printing passes every line
through a Redactor of the home's current secrets once more, so a secret added to secrets.yaml after
a run is not shown either.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.cluster import ClusterOption, NamespaceOption, local_only
from controller.cli.home import fail, local_home, resolve_run

FOLLOW_POLL_SECONDS = 0.2
CANCEL_WAIT_SECONDS = 60.0


class _LogReader:
    """Reads one task's log from where it last stopped, whole lines only (a line still being written
    waits for its end), redacted."""

    def __init__(self, path: Path, prefix: str, redact: Any):
        self.path, self.prefix, self.redact = path, prefix, redact
        self.offset = 0

    def pump(self, final: bool = False) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = len(chunk) if final else chunk.rfind(b"\n") + 1
        if end <= 0:
            return
        self.offset += end
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            sys.stdout.write(f"{self.prefix}{self.redact(line)}\n")
        sys.stdout.flush()


def _redactor(home: Path) -> Any:
    from controller.executors.local.secrets import LocalSecrets, Redactor, SecretError

    try:
        values = LocalSecrets(home).known_values()
    except SecretError:  # an unreadable secrets file: what the executor redacted when writing stays so
        values = []
    return Redactor(values).redact


def logs(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="An id, a unique prefix or latest.")],
    step: Annotated[
        str | None,
        typer.Argument(metavar="[STEP]", help="One step (as the run summary names it); default all."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing while the run runs; return when it ends.")
    ] = False,
    cluster: ClusterOption = False,
    namespace: NamespaceOption = None,
) -> None:
    """Print a run's step logs, secret values shown as ***; for all steps each line starts with its
    step's name in brackets."""
    if cluster:
        from controller.cli.cluster_runs import logs_command

        logs_command(namespace, run_ref, step, follow)
        return
    local_only("logs", namespace)
    from controller.executors.local.store import ACTIVE_PHASES, load_run

    home = local_home()
    record = resolve_run("logs", home, run_ref)
    name, folder, redact = str(record["run"]), Path(record["folder"]), _redactor(home)
    readers: dict[str, _LogReader] = {}
    while True:
        # a run started with --detach has no steps in its record until its process has set up
        steps = {s["name"]: s for s in record.get("steps") or []}
        active = record.get("phase") in ACTIVE_PHASES
        if step is not None and step not in steps and (steps or not (follow and active)):
            known = ", ".join(steps) or "none yet"
            raise fail(f"sluice logs: run {name} has no step {step!r} (steps: {known})")
        wanted = list(steps) if step is None else [step] if step in steps else []
        for task in wanted:
            if task not in readers:
                log = folder / (steps[task].get("log") or f"logs/{task}.log")
                readers[task] = _LogReader(log, "" if step else f"[{task}] ", redact)
        for reader in readers.values():
            reader.pump(final=not (follow and active))
        if not (follow and active):
            break
        time.sleep(FOLLOW_POLL_SECONDS)
        try:
            record = load_run(home, name)
        except FileNotFoundError:
            raise fail(f"sluice logs: run {name} was deleted") from None
    # every step asked for that printed nothing says why, also among all steps (a cached run has no logs)
    for task, reader in readers.items():
        if not reader.path.is_file():
            print(f"sluice logs: step {task} has no log: {_state(steps[task])}", file=sys.stderr)


def _state(step: dict[str, Any]) -> str:
    if step.get("cached"):
        return "restored from the cache (its log is in the run that computed it)"
    reason = f" ({step['reason']})" if step.get("reason") else ""
    return f"{str(step.get('phase', '?')).lower()}{reason}"


def cancel(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="An id, a unique prefix or latest.")],
    no_finally: Annotated[
        bool, typer.Option("--no-finally", help="Stop the finally tasks too (Tekton's Cancelled).")
    ] = False,
    cluster: ClusterOption = False,
    namespace: NamespaceOption = None,
) -> None:
    """Cancel a running local run, foreground or detached: running steps get SIGTERM (SIGKILL after a
    grace), then the finally tasks run unless --no-finally. Waits until the run has ended.
    With --cluster: asks the operator to cancel a WorkflowRun (its spec.status) and returns."""
    if cluster:
        from controller.cli.cluster_runs import cancel_command

        cancel_command(namespace, run_ref, no_finally)
        return
    local_only("cancel", namespace)
    from controller.executors.local.runprocess import request_cancel, running_pid
    from controller.executors.local.store import ACTIVE_PHASES, load_run

    home = local_home()
    record = resolve_run("cancel", home, run_ref)
    name, folder = str(record["run"]), Path(record["folder"])
    if record.get("phase") not in ACTIVE_PHASES:
        raise fail(f"sluice cancel: run {name} already {record.get('phase')}")
    pid = running_pid(folder)
    if pid is None:
        raise fail(f"sluice cancel: run {name} is {record.get('phase')} but no process runs it")
    request_cancel(folder, pid, run_finally=not no_finally)
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while time.monotonic() < deadline:
        record = load_run(home, name)
        if record.get("phase") not in ACTIVE_PHASES:
            print(f"run {name} {str(record.get('phase')).lower()}: {record.get('message', '')}")
            return
        time.sleep(FOLLOW_POLL_SECONDS)
    print(f"cancel sent to run {name}; still finishing (its finally tasks?): see `sluice runs {name}`")


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
    app.command("cancel")(cancel)
