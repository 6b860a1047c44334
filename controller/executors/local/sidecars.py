"""A task's `sidecars`: started before its steps, stopped after them (as host processes, or under
`--containers` as engine commands that run them in the attempt's pod, pods.py).

As in a Tekton pod (pkg/pod/status.go `SidecarsReady`), the first step starts once every sidecar
is ready: running with its `readinessProbe` passed (exec, tcpSocket or httpGet, from this machine
or in the pod), running at all when it has none (in a pod: its container runs), or already exited
(a terminated sidecar counts as ready, whatever its exit code, and does not fail the task: only
steps decide the TaskRun's outcome). A probe that never passes keeps the steps waiting until the
task's timeout, as on a cluster. When the steps end, each sidecar's container is removed
(`Step.stop`) and its process group stopped (SIGTERM, then SIGKILL). Each sidecar's output goes
to its own log, `logs/<task>.sidecar-<name>.log`, secrets redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from controller.executors.local.probes import network_probe_passes
from controller.executors.local.process import (
    LineSink,
    Step,
    kill_group,
    pump,
    start_in_group,
    stop_container,
)

# Kubernetes probes every periodSeconds (default 10 s); locally the first pass is seen sooner,
# which changes when steps start, never whether they do.
POLL_SECONDS = 0.2
PROBE_KINDS = ("exec", "tcpSocket", "httpGet")


@dataclass
class Sidecar:
    step: Step  # what runs: argv, env, cwd (a sidecar has no timeout or onError)
    probe: dict[str, Any] = field(default_factory=dict)  # its readinessProbe
    startup: dict[str, Any] = field(default_factory=dict)  # its startupProbe: readiness is checked after it
    proc: asyncio.subprocess.Process | None = None
    pumping: asyncio.Future[None] | None = None
    log: TextIO | None = None
    # in a pod: the command that runs one check of `probe` there (None: from this machine)
    probe_argv: Callable[[dict[str, Any]], list[str]] | None = None


async def _probe_passes(car: Sidecar, probe: dict[str, Any]) -> bool:
    """One readiness check: an exec probe's command, or the command a pod gives its checks
    (`probe_argv`, pods.py), exits 0; else a tcpSocket/httpGet check from this machine."""
    timeout = float(probe.get("timeoutSeconds", 1))
    if car.probe_argv is None and "exec" not in probe:
        return await network_probe_passes(probe)
    command = (
        car.probe_argv(probe) if car.probe_argv else [str(a) for a in probe["exec"].get("command") or []]
    )
    proc = await start_in_group(car.step, command, output=False)
    try:
        return await asyncio.wait_for(proc.wait(), timeout) == 0
    except TimeoutError:
        await kill_group(proc)
        return False


async def _ready(car: Sidecar) -> None:
    """Return once the sidecar is ready or has exited (Tekton counts both as ready): its startupProbe
    passed, then its readinessProbe (Kubernetes checks readiness only once the container started)."""
    assert car.proc is not None
    for probe in [p for p in (car.startup, car.probe) if p] or [{}]:
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        while car.proc.returncode is None:
            if (not probe and car.probe_argv is None) or await _probe_passes(car, probe):
                break
            await asyncio.sleep(POLL_SECONDS)
        else:
            return  # it exited


class Sidecars:
    """The sidecars of one task attempt: `async with Sidecars(...) as cars: await cars.ready(deadline)`."""

    def __init__(self, cars: list[Sidecar], log_dir: Path, task: str, redact: list[str]):
        self.cars = cars
        self.log_dir = log_dir
        self.task = task
        self.redact = redact

    async def __aenter__(self) -> Sidecars:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _start(self) -> None:
        if self.cars:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for car in self.cars:
            log = (self.log_dir / f"{self.task}.sidecar-{car.step.name}.log").open("a", encoding="utf-8")
            car.log = log
            sink = LineSink(log, lambda line: None, self.redact)
            car.proc = await start_in_group(car.step, car.step.argv, output=True)
            assert car.proc.stdout is not None
            car.pumping = asyncio.ensure_future(_pump_then_close(car.proc.stdout, sink))

    async def ready(self, deadline: float | None) -> bool:
        """Wait for every sidecar to be ready; False when `deadline` (monotonic) came first."""
        if not self.cars:
            return True
        limit = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.gather(*(_ready(car) for car in self.cars)), limit)
        except TimeoutError:
            return False
        return True

    async def __aexit__(self, *exc: object) -> None:
        for car in self.cars:  # stopped even when the steps were cancelled or timed out
            ended = car.proc.returncode if car.proc is not None else None
            if car.proc is not None:
                await asyncio.shield(stop_container(car.step))  # a container's client alone would not stop it
                await asyncio.shield(kill_group(car.proc))
            if car.pumping is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(car.pumping, 5.0)
            if car.log is not None:
                if ended is not None:  # it ended on its own before the steps did (not a failure)
                    car.log.write(f"--- sidecar {car.step.name} exited with code {ended}\n")
                car.log.close()


async def _pump_then_close(stream: asyncio.StreamReader, sink: LineSink) -> None:
    await pump(stream, sink)
    sink.close()
