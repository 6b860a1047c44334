"""A TaskRun attempt with sidecars under `--containers`: its steps and sidecars as containers of one
podman pod, as Tekton runs them in one Kubernetes pod.

What they share, as in the pod: the network namespace (a step reaches a sidecar at
localhost:PORT), and through their mounts the task's workspaces and emptyDir volumes. The pod has
only loopback (`--network none`) unless one of its containers needs a network (the built-in stages
the catalog marks, `Sandbox.network`); a network is the pod's, as on Kubernetes. Every container
keeps the restrictions a step has (containers.py). Readiness is sidecars.py's `SidecarsReady`,
each check run where the kubelet would run it: an exec probe in the sidecar (`podman exec`), a
tcpSocket/httpGet probe in the pod's network namespace (probes.py entered with `nsenter`), and a
sidecar without a probe is ready once its container runs (`podman wait --condition running`).
The pod, with whatever still runs in it, is removed when the attempt ends however it ends
(`podman pod rm --force`), as Tekton stops sidecars once the steps are done.

docker has no pods: a task with sidecars is refused there before anything runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.executors.local import probes
from controller.executors.local.containers import container_name, engine_step
from controller.executors.local.engines import Engine
from controller.executors.local.process import Step
from controller.executors.local.sidecars import Sidecar
from controller.executors.local.tekton import UnsupportedError

ENGINE_SECONDS = 60.0


class PodError(Exception):
    """The engine could not make the attempt's pod: one line saying why."""


def refuse_without_pods(engine: Engine, tasks: list[tuple[str, dict[str, Any]]]) -> None:
    """Sidecars share their steps' network namespace, which only a pod gives (not docker)."""
    if engine.podman:
        return
    for where, task in tasks:
        if (task.get("taskSpec") or {}).get("sidecars"):
            raise UnsupportedError(
                f"{where}.taskSpec.sidecars: sidecars under --containers need podman (its pods share"
                " one network namespace, as a Kubernetes pod does); docker has no pods: use"
                " --containers=podman or run without --containers"
            )


class Pod:
    """`async with Pod(engine, name, network) as pod:` the pod exists, its infra container running."""

    def __init__(self, engine: Engine, name: str, network: bool):
        self.engine = engine
        self.name = name
        self.network = network
        self.infra_pid = 0

    async def _engine(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.engine.argv(*args),
            env=self.engine.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        out, err = await asyncio.wait_for(proc.communicate(), ENGINE_SECONDS)
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
            raise PodError(f"podman {args[0]} {args[1]} failed: {lines[-1]}")
        return out.decode().strip()

    async def __aenter__(self) -> Pod:
        await asyncio.shield(self._remove())  # a pod of the same name left by a killed run
        created = ["pod", "create", "--name", self.name]
        await self._engine(*created, *([] if self.network else ["--network", "none"]))
        try:
            await self._engine("pod", "start", self.name)
            infra = await self._engine("pod", "inspect", "--format", "{{.InfraContainerID}}", self.name)
            self.infra_pid = int(await self._engine("inspect", "--format", "{{.State.Pid}}", infra))
        except BaseException:
            await asyncio.shield(self._remove())
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self._remove())

    async def _remove(self) -> None:
        # nothing to remove, or the engine is gone: the next attempt of this name retries
        with contextlib.suppress(PodError, OSError, TimeoutError):
            await self._engine("pod", "rm", "--force", "--ignore", "--time", "0", self.name)

    def probe_argv(self, container: str) -> Callable[[dict[str, Any]], list[str]]:
        """How one readiness check of the sidecar `container` runs in the pod (see the module text)."""

        def argv(probe: dict[str, Any]) -> list[str]:
            if "exec" in probe:
                return self.engine.argv("exec", container, *[str(a) for a in probe["exec"]["command"]])
            if not probe:
                return self.engine.argv("wait", "--condition", "running", container)
            enter = ["nsenter", f"--net=/proc/{self.infra_pid}/ns/net", "--"]
            if os.geteuid() != 0:  # rootless: the pod's namespace belongs to podman's user namespace
                enter = self.engine.argv("unshare", *enter)
            return [*enter, sys.executable, str(Path(probes.__file__)), json.dumps(probe)]

        return argv


def pod_containers(
    engine: Engine,
    pod: Pod,
    taskrun: str,
    attempt: int,
    steps: list[Step],
    sidecars: list[Sidecar],
    hidden: tuple[Path, ...],
) -> tuple[list[Step], list[Sidecar]]:
    """The attempt's steps and sidecars as engine commands that run them in `pod`."""

    def in_pod(step: Step, name: str) -> Step:
        assert step.sandbox is not None, step.name
        return engine_step(engine, replace(step, sandbox=replace(step.sandbox, pod=pod.name)), name, hidden)

    cars = []
    for car in sidecars:
        name = container_name(taskrun, f"sidecar-{car.step.name}", attempt)
        cars.append(replace(car, step=in_pod(car.step, name), probe_argv=pod.probe_argv(name)))
    return [in_pod(s, container_name(taskrun, s.name, attempt)) for s in steps], cars


def needs_network(steps: list[Step]) -> bool:
    """A pod's network is every container's: it has one when any of them needs it."""
    return any(s.sandbox is not None and s.sandbox.network for s in steps)
