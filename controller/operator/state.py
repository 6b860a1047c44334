"""What the operator remembers between events: compact views of the objects it watches.

Filled only from watch events (kopf's streams), so it never costs an API read. Everything kept
is small: names, phases, times and the status Sluice itself wrote — no specs, no secrets.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.api.workflowrun import TERMINAL_PHASES, parse_workflowrun_spec
from controller.operator.mirror import STEPS_ANNOTATION

Key = tuple[str, str]  # (namespace, name)


@dataclass
class RunInfo:
    namespace: str
    name: str
    uid: str
    workflow: str
    created: str
    generation: int
    status: dict[str, Any]
    deleting: bool = False
    # kopf has taken the run on: its finalizer or its last-handled-configuration is on the object
    taken: bool = True
    seen: float = 0.0  # time.monotonic() of the last watch event

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    @property
    def active(self) -> bool:
        return not self.deleting and self.phase not in TERMINAL_PHASES


def _compact_tekton(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if k == STEPS_ANNOTATION
            },
        },
        "spec": {"status": (body.get("spec") or {}).get("status")},
        "status": dict(body.get("status") or {}),
    }


class RunBook:
    """WorkflowRuns as last seen, by (namespace, name)."""

    def __init__(self, finalizer: str = "", handled_annotation: str = "") -> None:
        self._runs: dict[Key, RunInfo] = {}
        self.finalizer = finalizer
        self.handled_annotation = handled_annotation

    def observe(self, body: Mapping[str, Any]) -> RunInfo:
        meta = body.get("metadata") or {}
        taken = self.finalizer in (meta.get("finalizers") or []) or self.handled_annotation in (
            meta.get("annotations") or {}
        )
        key = (meta.get("namespace") or "default", meta.get("name") or "")
        info = RunInfo(
            namespace=key[0],
            name=key[1],
            uid=meta.get("uid") or "",
            workflow=parse_workflowrun_spec(body).workflow,
            created=meta.get("creationTimestamp") or "",
            generation=int(meta.get("generation") or 1),
            status=dict(body.get("status") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
            taken=taken,
            seen=time.monotonic(),
        )
        self._runs[key] = info
        return info

    def get(self, namespace: str, name: str) -> RunInfo | None:
        return self._runs.get((namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        self._runs.pop((namespace, name), None)

    def of_workflow(self, namespace: str, workflow: str) -> list[RunInfo]:
        runs = [r for r in self._runs.values() if r.namespace == namespace and r.workflow == workflow]
        return sorted(runs, key=lambda r: (r.created, r.name))

    def untaken(self, quiet_for: float) -> list[RunInfo]:
        """Active runs kopf has not taken on, without a watch event for `quiet_for` seconds."""
        before = time.monotonic() - quiet_for
        return [r for r in self._runs.values() if not r.taken and r.active and r.seen <= before]

    def __len__(self) -> int:
        return len(self._runs)


class TektonBook:
    """PipelineRuns and TaskRuns of Sluice runs as last seen (status only)."""

    def __init__(self) -> None:
        self._pipelineruns: dict[Key, dict[str, Any]] = {}
        self._taskruns: dict[Key, dict[str, dict[str, Any]]] = defaultdict(dict)

    def observe_pipelinerun(self, namespace: str, body: Mapping[str, Any]) -> None:
        compact = _compact_tekton(body)
        self._pipelineruns[(namespace, compact["metadata"]["name"])] = compact

    def forget_pipelinerun(self, namespace: str, name: str) -> None:
        self._pipelineruns.pop((namespace, name), None)
        self._taskruns.pop((namespace, name), None)

    def pipelinerun(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._pipelineruns.get((namespace, name))

    def observe_taskrun(self, namespace: str, pipelinerun: str, body: Mapping[str, Any]) -> None:
        compact = _compact_tekton(body)
        self._taskruns[(namespace, pipelinerun)][compact["metadata"]["name"]] = compact

    def forget_taskrun(self, namespace: str, pipelinerun: str, name: str) -> None:
        self._taskruns.get((namespace, pipelinerun), {}).pop(name, None)

    def taskruns(self, namespace: str, pipelinerun: str) -> dict[str, dict[str, Any]]:
        return self._taskruns.get((namespace, pipelinerun), {})


@dataclass
class Locks:
    """One lock per WorkflowRun: its PipelineRun, TaskRuns and itself are reconciled one at a time."""

    _locks: dict[Key, asyncio.Lock] = field(default_factory=dict)

    def of(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def drop(self, namespace: str, name: str) -> None:
        self._locks.pop((namespace, name), None)
