"""Writing a WorkflowRun's status: mirror its PipelineRun, one merged patch per change.

Every write of a WorkflowRun status goes through `write_run_status`, so the "only when changed"
rule, the metrics, the Events on phase transitions and the Workflow's `lastRun` / `endpoints`
follow-ups happen in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controller.api.meta import WORKFLOW_RUN, object_stub
from controller.api.workflowrun import TERMINAL_PHASES
from controller.operator import conditions as cond
from controller.operator.events import post_event
from controller.operator.kube import ApiError
from controller.operator.mirror import run_status
from controller.operator.runtime import Runtime, sluice_path
from controller.operator.state import RunInfo
from controller.settings import LABEL_RUN

logger = logging.getLogger("sluice.operator.runs")

_URL_PREFIXES = ("http://", "https://")


def _merged(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _run_ref(info: RunInfo) -> dict[str, Any]:
    return object_stub(WORKFLOW_RUN, info.namespace, info.name, info.uid)


async def write_run_status(rt: Runtime, info: RunInfo, desired: Mapping[str, Any]) -> bool:
    """Patch `status` with `desired` unless it already shows it; True if a write happened."""
    key = (info.namespace, info.name)
    current = rt.written.get(key, info.status)
    if not cond.status_changed(current, desired):
        return False
    patched = await rt.client.merge_patch(
        sluice_path("workflowruns", info.namespace, info.name) + "/status", {"status": dict(desired)}
    )
    if patched is None:  # the run is gone
        return False
    before = current.get("phase")
    after_status = _merged(current, desired)
    rt.written[key] = after_status
    info.status = after_status
    phase = str(after_status.get("phase") or "Pending")
    rt.metrics.runs.set(info.namespace, info.name, phase)
    if phase != before:
        rt.metrics.transitions.labels(namespace=info.namespace, phase=phase).inc()
        await _on_transition(rt, info, phase, after_status)
    return True


async def _on_transition(rt: Runtime, info: RunInfo, phase: str, status: Mapping[str, Any]) -> None:
    ready = cond.condition(status.get("conditions"), cond.READY) or {}
    reason = str(ready.get("reason") or phase)
    if phase == "Failed":
        await post_event(rt.client, _run_ref(info), type_="Warning", reason=reason, message="the run failed")
    elif phase != "Pending":  # Pending is announced by the "Created" event already
        await post_event(
            rt.client, _run_ref(info), type_="Normal", reason=phase, message=f"the run is {phase.lower()}"
        )
    if phase in TERMINAL_PHASES or phase == "Running":
        await update_workflow(rt, info, status)
    if phase in TERMINAL_PHASES:
        await prune_history(rt, info)


async def sync_run(rt: Runtime, namespace: str, name: str) -> None:
    """Mirror the run's PipelineRun (and TaskRuns) onto the WorkflowRun if anything changed."""
    async with rt.locks.of(namespace, name):
        info = rt.runs.get(namespace, name)
        if info is None:
            body = await rt.client.get(sluice_path("workflowruns", namespace, name))
            if body is None:
                return
            info = rt.runs.observe(body)
        if info.deleting:
            return
        current = rt.written.get((namespace, name), info.status)
        pr_name = str((current.get("pipelineRunRef") or {}).get("name") or name)
        pipelinerun = rt.tekton.pipelinerun(namespace, pr_name)
        if pipelinerun is None:
            return
        labels = (pipelinerun.get("metadata") or {}).get("labels") or {}
        from controller.compiler.naming import label_value

        if labels.get(LABEL_RUN) not in (None, name, label_value(name)):
            return
        desired = run_status(
            pipelinerun,
            rt.tekton.taskruns(namespace, pr_name),
            pipelinerun_name=pr_name,
            generation=info.generation,
            previous=current,
        )
        await write_run_status(rt, info, desired)


async def update_workflow(rt: Runtime, info: RunInfo, status: Mapping[str, Any]) -> None:
    """`status.lastRun` (and `endpoints` after a success) of the run's Workflow, if it is the newest run."""
    if not info.workflow:
        return
    newest = rt.runs.of_workflow(info.namespace, info.workflow)
    if newest and (newest[-1].created, newest[-1].name) > (info.created, info.name):
        return
    last_run = {
        "name": info.name,
        "phase": status.get("phase"),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
    }
    patch: dict[str, Any] = {"lastRun": {k: v for k, v in last_run.items() if v}}
    if status.get("phase") == "Succeeded":
        outputs = status.get("outputs") or {}
        patch["endpoints"] = [
            {"name": key, "url": value, "run": info.name}
            for key, value in sorted(outputs.items())
            if isinstance(value, str) and value.startswith(_URL_PREFIXES)
        ] or None
    try:
        await rt.client.merge_patch(
            sluice_path("workflows", info.namespace, info.workflow) + "/status", {"status": patch}
        )
    except ApiError as exc:
        logger.warning("could not record the last run on workflow %s: %s", info.workflow, exc)


async def prune_history(rt: Runtime, info: RunInfo) -> None:
    """Delete the oldest finished runs of the workflow beyond `runPolicy.historyLimit`."""
    if not info.workflow:
        return
    try:
        workflow = await rt.client.get(sluice_path("workflows", info.namespace, info.workflow))
    except ApiError as exc:
        logger.warning("could not read workflow %s for pruning: %s", info.workflow, exc)
        return
    if workflow is None:
        return
    policy = (workflow.get("spec") or {}).get("runPolicy") or {}
    limit = policy.get("historyLimit", 10)
    if not isinstance(limit, int) or limit < 0:
        return
    finished = [r for r in rt.runs.of_workflow(info.namespace, info.workflow) if not r.active]
    for old in finished[: max(0, len(finished) - limit)]:
        if old.deleting:
            continue
        try:
            await rt.client.delete(sluice_path("workflowruns", old.namespace, old.name))
            old.deleting = True
        except ApiError as exc:
            logger.warning("could not prune run %s: %s", old.name, exc)


async def set_run_status(
    rt: Runtime, info: RunInfo, health: cond.Health, reason: str, message: str, **extra: Any
) -> None:
    """Write the run's phase (Pending unless `phase=` says otherwise), kstatus conditions of
    `health` with `reason` and `message`, and any `extra` status fields."""
    phase = extra.pop("phase", "Pending")
    desired = {
        "phase": phase,
        "observedGeneration": info.generation,
        "conditions": cond.kstatus_conditions(
            health,
            reason=reason,
            message=message,
            generation=info.generation,
            previous=rt.written.get((info.namespace, info.name), info.status).get("conditions"),
        ),
        **extra,
    }
    await write_run_status(rt, info, desired)
