"""Cancelling runs: a WorkflowRun's `spec.status`, a deleted run, a run replaced by a newer one.

`sluice cancel --cluster RUN` (or `kubectl patch`) sets the WorkflowRun's `spec.status` to
`Cancelled` or `CancelledRunFinally`, as one cancels a Tekton PipelineRun. The operator copies the
value onto the run's PipelineRun; Tekton stops the tasks (and, for `CancelledRunFinally`, then
runs the finally tasks) and reports the PipelineRun cancelled, which the status mirror turns into
phase `Cancelled`. A run cancelled before its PipelineRun exists (waiting for its Workflow or a
Codeset revision) ends `Cancelled` at once and never gets one. Level-triggered: every event of an
unfinished run asking to be cancelled checks the PipelineRun again, so a cancel that raced the
PipelineRun's creation still reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.api.conditions import CANCEL_REQUESTED, CANCELLED
from controller.api.workflowrun import CANCEL_REQUESTS, TERMINAL_PHASES, parse_workflowrun_spec
from controller.operator import conditions as cond
from controller.operator.events import post_event
from controller.operator.mirror import pipelinerun_phase
from controller.operator.runstatus import set_run_status
from controller.operator.runtime import Runtime, tekton_path
from controller.operator.state import RunInfo

# A PipelineRun whose spec.status is one of these is already stopping.
_STOPPING = frozenset({*CANCEL_REQUESTS, "StoppedRunFinally"})


async def cancel_pipelinerun(
    rt: Runtime, namespace: str, name: str, owner_uid: str, how: str = "Cancelled"
) -> bool:
    """Set `spec.status: <how>` on a PipelineRun we own that is not finished nor stopping; True
    if patched."""
    current = await rt.client.get(tekton_path("pipelineruns", namespace, name))
    if current is None:
        return False
    owners = (current.get("metadata") or {}).get("ownerReferences") or []
    if not any(o.get("uid") == owner_uid for o in owners):
        return False
    if (
        pipelinerun_phase(current) in TERMINAL_PHASES
        or (current.get("spec") or {}).get("status") in _STOPPING
    ):
        return False
    await rt.client.merge_patch(tekton_path("pipelineruns", namespace, name), {"spec": {"status": how}})
    return True


async def cancel_unstarted(rt: Runtime, info: RunInfo, how: str) -> None:
    """A run asked to be cancelled before it had a PipelineRun: it ends Cancelled now."""
    await set_run_status(
        rt,
        info,
        "done",
        CANCELLED,
        f"cancelled before it started (spec.status: {how})",
        phase="Cancelled",
        completionTime=cond.now_rfc3339(),
    )


async def honour_cancel(rt: Runtime, body: Mapping[str, Any]) -> None:
    """On every WorkflowRun event: pass a `spec.status` cancel on to the run's PipelineRun."""
    how = parse_workflowrun_spec(body).cancel
    if how is None:
        return
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
    async with rt.locks.of(namespace, name):
        info = rt.runs.get(namespace, name)
        if info is None or info.deleting:
            return
        status = rt.written.get((namespace, name), info.status)
        if str(status.get("phase") or "Pending") in TERMINAL_PHASES:
            return
        pipelinerun = str((status.get("pipelineRunRef") or {}).get("name") or "")
        if not pipelinerun:
            # Not started (waiting for its Workflow or a revision, between kopf's retries): ended
            # now. Should start_run create the PipelineRun meanwhile, its status write is a new
            # event, and this sees the PipelineRun then.
            await cancel_unstarted(rt, info, how)
            return
        if await cancel_pipelinerun(rt, namespace, pipelinerun, info.uid, how):
            await post_event(
                rt.client,
                body,
                type_="Normal",
                reason=CANCEL_REQUESTED,
                message=f"PipelineRun {pipelinerun} asked to stop (spec.status: {how})",
            )
