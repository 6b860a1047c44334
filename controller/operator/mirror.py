"""Tekton status -> WorkflowRun status: pure functions, no I/O.

The operator feeds these with the latest PipelineRun and its TaskRuns as seen on the watch streams
and writes the result only when it differs from what the WorkflowRun already shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from controller.api.conditions import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED
from controller.api.workflowrun import TERMINAL_PHASES, Phase, StepPhase
from controller.operator import conditions as cond

# On a PipelineRun: the pipeline tasks that are workflow steps, in order (the compiler also emits
# internal tasks: codeset clones, `when` gates, the summary), so `steps[]` lists only the user's.
STEPS_ANNOTATION = "sluice.dev/steps"

# Tekton reasons (tekton.dev/v1) that mean "not started yet" or "stopped by a user".
_PENDING_REASONS = frozenset({"PipelineRunPending", "Pending", "TaskRunPending", "ResolvingPipelineRef"})
_CANCELLED_REASONS = frozenset(
    {"Cancelled", "PipelineRunCancelled", "CancelledRunFinally", "StoppedRunFinally", "TaskRunCancelled"}
)
_STEP_MESSAGE_LIMIT = 256


def succeeded_condition(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Tekton's one `Succeeded` condition of a PipelineRun or TaskRun."""
    status = (obj or {}).get("status") or {}
    return cond.condition(status.get("conditions"), "Succeeded")


def pipelinerun_phase(pipelinerun: Mapping[str, Any] | None) -> Phase:
    """The phase of a Tekton PipelineRun or TaskRun, from its `Succeeded` condition."""
    found = succeeded_condition(pipelinerun)
    if found is None:
        return "Pending"
    status, reason = found.get("status"), found.get("reason", "")
    if status == "True":
        return "Succeeded"
    if status == "False":
        return "Cancelled" if reason in _CANCELLED_REASONS else "Failed"
    return "Pending" if reason in _PENDING_REASONS else "Running"


def taskrun_phase(taskrun: Mapping[str, Any] | None) -> StepPhase:
    # TaskRuns carry the same Succeeded condition, with the same reasons
    return pipelinerun_phase(taskrun)


def steps_of(
    pipelinerun: Mapping[str, Any] | None, taskruns: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per workflow step: from `childReferences` (with their TaskRuns) and `skippedTasks`."""
    status = (pipelinerun or {}).get("status") or {}
    annotations = ((pipelinerun or {}).get("metadata") or {}).get("annotations") or {}
    wanted = [s for s in str(annotations.get(STEPS_ANNOTATION) or "").split(",") if s]
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ref in status.get("childReferences") or ():
        name = ref.get("pipelineTaskName") or ref.get("name")
        if not name or name in seen:
            continue
        seen.add(name)
        taskrun = taskruns.get(ref.get("name", ""))
        step: dict[str, Any] = {"name": name, "phase": taskrun_phase(taskrun)}
        tr_status = (taskrun or {}).get("status") or {}
        if tr_status.get("startTime"):
            step["startTime"] = tr_status["startTime"]
        if tr_status.get("completionTime"):
            step["completionTime"] = tr_status["completionTime"]
        found = succeeded_condition(taskrun)
        if found is not None and step["phase"] in ("Failed", "Cancelled") and found.get("message"):
            step["message"] = cond.one_line(str(found["message"]), _STEP_MESSAGE_LIMIT)
        steps.append(step)
    for skipped in status.get("skippedTasks") or ():
        name = skipped.get("name")
        if not name or name in seen:
            continue
        seen.add(name)
        reason = skipped.get("reason") or "when expressions evaluated to false"
        steps.append({"name": name, "phase": "Skipped", "message": cond.one_line(str(reason), 256)})
    if wanted:
        order = {name: index for index, name in enumerate(wanted)}
        steps = sorted((s for s in steps if s["name"] in order), key=lambda s: order[s["name"]])
    return steps


def outputs_of(pipelinerun: Mapping[str, Any] | None) -> dict[str, str]:
    """Workflow outputs from the PipelineRun's results (`string` as-is, arrays/objects as JSON)."""
    status = (pipelinerun or {}).get("status") or {}
    outputs: dict[str, str] = {}
    for result in status.get("results") or ():
        name = result.get("name")
        if not name:
            continue
        value = result.get("value")
        outputs[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return outputs


def run_status(
    pipelinerun: Mapping[str, Any] | None,
    taskruns: Mapping[str, Mapping[str, Any]],
    *,
    pipelinerun_name: str,
    generation: int | None,
    previous: Mapping[str, Any] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """The WorkflowRun `status` that mirrors a PipelineRun (and its TaskRuns)."""
    previous = previous or {}
    phase = pipelinerun_phase(pipelinerun)
    found = succeeded_condition(pipelinerun)
    tekton_reason = str((found or {}).get("reason") or "")
    tekton_message = str((found or {}).get("message") or "")
    pr_status = (pipelinerun or {}).get("status") or {}

    health: cond.Health
    if phase == "Succeeded":
        health, reason, message = "ready", SUCCEEDED, tekton_message or "the run succeeded"
    elif phase == "Failed":
        health, reason = "stalled", tekton_reason or FAILED
        message = tekton_message or "the run failed"
    elif phase == "Cancelled":
        health, reason, message = "done", CANCELLED, tekton_message or "the run was cancelled"
    elif phase == "Running":
        health, reason = "progressing", RUNNING
        message = f"PipelineRun {pipelinerun_name} is running"
    else:
        health, reason = "progressing", PENDING
        message = f"PipelineRun {pipelinerun_name} is pending"

    status: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "pipelineRunRef": {"name": pipelinerun_name},
        "conditions": cond.kstatus_conditions(
            health,
            reason=reason,
            message=message,
            generation=generation,
            previous=previous.get("conditions"),
            now=now,
        ),
        "startTime": pr_status.get("startTime") or previous.get("startTime"),
        "completionTime": pr_status.get("completionTime") if phase in TERMINAL_PHASES else None,
        "steps": steps_of(pipelinerun, taskruns),
        "outputs": outputs_of(pipelinerun) or None,
    }
    if phase in TERMINAL_PHASES and not status["completionTime"]:
        # Tekton sets completionTime with the final condition; keep the field present regardless.
        status["completionTime"] = (
            previous.get("completionTime")
            or (found or {}).get("lastTransitionTime")
            or now
            or cond.now_rfc3339()
        )
    return status
