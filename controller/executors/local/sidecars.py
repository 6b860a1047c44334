"""A task's `sidecars` as host processes: started before its steps, stopped after them.

As in a Tekton pod (pkg/pod/status.go `SidecarsReady`), the first step starts once every sidecar
is ready: running with its `readinessProbe` passed (exec, tcpSocket or httpGet on this machine),
running at all when it has none, or already exited (a terminated sidecar counts as ready, whatever
its exit code, and does not fail the task: only steps decide the TaskRun's outcome). A probe that
never passes keeps the steps waiting until the task's timeout, as on a cluster. When the steps end,
each sidecar's process group is stopped (SIGTERM, then SIGKILL). Each sidecar's output goes to its
own log, `logs/<task>.sidecar-<name>.log`, secrets redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from controller.executors.local.process import LineSink, Step, kill_group, pump, start_in_group

# Kubernetes probes every periodSeconds (default 10 s); locally the first pass is seen sooner,
# which changes when steps start, never whether they do.
POLL_SECONDS = 0.2
PROBE_KINDS = ("exec", "tcpSocket", "httpGet")


@dataclass
class Sidecar:
    step: Step  # what runs: argv, env, cwd (a sidecar has no timeout or onError)
    probe: dict[str, Any] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    pumping: asyncio.Future[None] | None = None
    log: TextIO | None = None


async def _probe_passes(car: Sidecar) -> bool:
    """One readiness check (a Kubernetes probe, run from this machine)."""
    probe, timeout = car.probe, float(car.probe.get("timeoutSeconds", 1))
    if "exec" in probe:
        command = [str(a) for a in probe["exec"].get("command") or []]
        proc = await start_in_group(car.step, command, output=False)
        try:
            return await asyncio.wait_for(proc.wait(), timeout) == 0
        except TimeoutError:
            await kill_group(proc)
            return False
    check = probe.get("tcpSocket") or probe.get("httpGet") or {}
    host, port = str(check.get("host") or "127.0.0.1"), int(check["port"])
    if "tcpSocket" in probe:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
    scheme = str(check.get("scheme") or "HTTP").lower()
    url = f"{scheme}://{host}:{port}{check.get('path') or '/'}"
    return await asyncio.to_thread(_http_ok, url, timeout)


def _http_ok(url: str, timeout: float) -> bool:
    """Kubernetes' httpGet: a status from 200 to 399 passes."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except urllib.error.HTTPError as exc:
        return 200 <= exc.code < 400
    except (OSError, ValueError):
        return False


async def _ready(car: Sidecar) -> None:
    """Return once the sidecar is ready or has exited (Tekton counts both as ready)."""
    assert car.proc is not None
    await asyncio.sleep(float(car.probe.get("initialDelaySeconds", 0)))
    while car.proc.returncode is None:
        if not car.probe or await _probe_passes(car):
            return
        await asyncio.sleep(POLL_SECONDS)


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
