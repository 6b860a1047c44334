"""Running one task attempt's steps as local processes, each in its own process group.

A step runs in a new session so that a timeout, a cancellation or the end of the step can
signal everything it started (shells, `python -m ...`, their children) with one `killpg`.
A program that must outlive its step (the local model server a deploy step starts) must
start its own session; anything left in the step's group when the step ends is terminated,
as a pod's processes are when its container exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from controller.executors.local.secrets import Redactor

KILL_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class Mount:
    """A folder of this machine that a step's container sees at `path` (podman's `-v host:path[:ro]`)."""

    path: str  # inside the container, as Tekton mounts it
    host: Path
    read_only: bool = False


@dataclass(frozen=True)
class Sandbox:
    """What a step's container gets besides its mounts: the step's image and its pod's restrictions
    (securityContext, limits), read from the compiled task by resolve and turned into engine flags by
    containers.py. Empty fields leave the image's or the engine's default, as Kubernetes does."""

    image: str
    workdir: str = ""  # the step's workingDir (a path in the container)
    user: str = ""  # uid[:gid]
    groups: tuple[str, ...] = ()  # supplementary groups (the pod's fsGroup)
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = False
    seccomp_unconfined: bool = False
    privileged: bool = False
    memory: int | None = None  # bytes
    cpus: float | None = None
    network: bool = False
    pod: str = ""  # the podman pod it joins (a task with sidecars, pods.py): the pod's network is its
    image_entrypoint: bool = False  # no command or script: the image's entrypoint gets the args


@dataclass
class Step:
    """A step ready to run: every variable substituted, secrets resolved into `env`.

    `mounts` says what the step's pod would mount, for a runner that starts containers:
    the task's workspaces (at their `mountPath`, default `/workspace/<name>`), its results folder
    (`/tekton/results`) and its emptyDir volumes (one folder per task attempt, shared by its steps as
    in a pod; in memory for `medium: Memory`). Host processes
    cannot mount: they run in `cwd` with `env`, where a volume mounted at /tmp is `TMPDIR`.
    `sandbox` is set when the step runs in a container; `stop` is the command that removes the
    step's container when the step is killed (the engine client's death alone does not stop it).
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    timeout: float | None = None
    continue_on_error: bool = False
    mounts: list[Mount] = field(default_factory=list)
    sandbox: Sandbox | None = None
    stop: list[str] = field(default_factory=list)
    exit_code_file: Path | None = None  # where its exit code is written: $(steps.step-<name>.exitCode.path)
    # applied as the step starts (what only earlier steps make known: step results); ValueError
    # fails the step with its message
    on_start: Callable[[Step], Step] | None = None


@dataclass
class Outcome:
    """How an attempt ended. `reason`: Succeeded | Failed | TimedOut."""

    reason: str
    message: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason == "Succeeded"


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the step's process group, SIGKILL what is left after a grace period, reap the leader."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline:
        if proc.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)
        elif not _group_alive(pgid):
            return
        else:
            await asyncio.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()


class LineSink:
    """Splits a process's output into lines (on \\n and \\r), redacts secrets (`Redactor`: whole
    values, each line of a multi-line one, their encodings), logs and forwards them."""

    def __init__(self, log: IO[str], on_line: Callable[[str], None], redact: list[str]):
        self.log = log
        self.on_line = on_line
        self.redactor = Redactor(redact)
        self.buffer = ""

    def _emit(self, line: str) -> None:
        line = self.redactor.redact(line)
        self.log.write(line + "\n")
        self.on_line(line)

    def feed(self, chunk: str) -> None:
        self.buffer += chunk.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer = ""
        self.log.flush()


async def pump(stream: asyncio.StreamReader, sink: LineSink) -> None:
    while chunk := await stream.read(65536):
        sink.feed(chunk.decode("utf-8", errors="replace"))
        sink.log.flush()


async def start_in_group(step: Step, argv: Sequence[str], *, output: bool) -> asyncio.subprocess.Process:
    """`argv` in the step's folder and environment, reading nothing, as the leader of a new process
    group (so that it and whatever it starts are stopped together, `kill_group`); its stdout and
    stderr piped together when `output`, else discarded. OSError when it cannot start."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=step.cwd,
        env=step.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.STDOUT if output else asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def stop_container(step: Step) -> None:
    """Run the step's `stop` command (remove its container), if it has one; never raises."""
    if not step.stop:
        return
    try:
        proc = await asyncio.create_subprocess_exec(
            *step.stop,
            env=step.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return
    try:
        await asyncio.wait_for(proc.wait(), 30.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def _kill(proc: asyncio.subprocess.Process, step: Step) -> None:
    await kill_group(proc)
    await stop_container(step)


async def run_step(step: Step, sink: LineSink, deadline: float | None) -> tuple[str, int]:
    """Run one step; returns (reason, exit code). Cancelling the caller kills the process group."""
    limit = deadline - time.monotonic() if deadline is not None else None
    if step.timeout is not None:
        limit = step.timeout if limit is None else min(limit, step.timeout)
    if limit is not None and limit <= 0:
        return "TimedOut", -1
    try:
        proc = await start_in_group(step, step.argv, output=True)
    except OSError as exc:
        sink.feed(f"sluice: cannot start step {step.name}: {exc}\n")
        return "Failed", 127
    assert proc.stdout is not None
    pumping = asyncio.ensure_future(pump(proc.stdout, sink))
    try:
        await asyncio.wait_for(proc.wait(), limit)
    except TimeoutError:
        await _kill(proc, step)
        await pumping
        sink.close()
        return "TimedOut", proc.returncode if proc.returncode is not None else -1
    except BaseException:  # cancellation (Ctrl-C, pipeline timeout): nothing may survive the step
        await asyncio.shield(_kill(proc, step))
        pumping.cancel()
        sink.close()
        raise
    # the step is over: strays left in its group go, as a pod's processes do when its container exits
    if _group_alive(proc.pid):
        _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(pumping, 5.0)
    sink.close()
    code = proc.returncode if proc.returncode is not None else -1
    return ("Succeeded" if code == 0 else "Failed"), code


async def run_steps(
    steps: list[Step],
    log_path: Path,
    on_line: Callable[[str], None],
    redact: list[str],
    deadline: float | None,
) -> Outcome:
    """Run the steps of one attempt in order, appending their output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    codes: dict[str, int] = {}
    with log_path.open("a", encoding="utf-8") as log:
        sink = LineSink(log, on_line, redact)
        for step in steps:
            log.write(f"--- step {step.name}\n")
            log.flush()
            if step.on_start is not None:
                try:
                    step = step.on_start(step)
                except ValueError as exc:
                    log.write(f"--- step {step.name} cannot start: {exc}\n")
                    return Outcome("Failed", f"step {step.name} cannot start: {exc}", codes)
            reason, code = await run_step(step, sink, deadline)
            codes[step.name] = code
            if step.exit_code_file is not None:  # as Tekton's entrypoint does, for later steps to read
                step.exit_code_file.parent.mkdir(parents=True, exist_ok=True)
                step.exit_code_file.write_text(str(code), encoding="utf-8")
            if reason == "TimedOut":
                log.write(f"--- step {step.name} timed out\n")
                return Outcome("TimedOut", f"step {step.name} timed out", codes)
            if reason == "Failed" and not step.continue_on_error:
                log.write(f"--- step {step.name} failed with exit code {code}\n")
                return Outcome("Failed", f"step {step.name} exited with code {code}", codes)
    return Outcome("Succeeded", "", codes)
