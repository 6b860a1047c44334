"""The Workflow reconciler: validate with the same loader as `sluice validate`, publish conditions.

Level-triggered on every watch event: the desired status is computed from the object alone and
written only when it differs, so the operator's own status patch (which comes back as an event)
converges at once. Invalid input is permanent: `Stalled` with the JSON path, no retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controller.api.conditions import INVALID_SCHEDULE, INVALID_SPEC, VALID
from controller.api.meta import WORKFLOW
from controller.api.workflow import parse_workflow
from controller.operator import conditions as cond
from controller.operator.events import post_event
from controller.operator.runtime import Runtime, sluice_path

logger = logging.getLogger("sluice.operator.workflows")


def diagnostic_message(exc: Exception) -> str:
    """`$.path: message` of the first diagnostic, and how many more there are."""
    diagnostics = list(getattr(exc, "diagnostics", []) or [])
    if not diagnostics:
        return cond.one_line(str(exc))
    first = diagnostics[0]
    text = f"{first.path}: {first.message}" if first.path else first.message
    more = len(diagnostics) - 1 + int(getattr(exc, "omitted", 0) or 0)
    if more:
        text += f" (and {more} more)"
    return cond.one_line(text)


def _invalid_reason(exc: Exception) -> str:
    """InvalidSchedule when the first problem is in `spec.schedule` (a cron expression or time
    zone the schema cannot check), else InvalidSpec."""
    diagnostics = list(getattr(exc, "diagnostics", []) or [])
    if diagnostics and str(diagnostics[0].path).startswith("$.spec.schedule"):
        return INVALID_SCHEDULE
    return INVALID_SPEC


def desired_status(body: Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(status fields to write, reason, message) for a Workflow object."""
    from controller.spec import SpecError

    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 1)
    previous = (body.get("status") or {}).get("conditions")
    try:
        workflow = parse_workflow(body)
    except SpecError as exc:
        health: cond.Health = "stalled"
        reason, message = _invalid_reason(exc), diagnostic_message(exc)
    else:
        health, reason = "ready", VALID
        message = f"valid workflow with {len(workflow.steps)} step{'s' if len(workflow.steps) != 1 else ''}"
    status = {
        "observedGeneration": generation,
        "conditions": cond.kstatus_conditions(
            health, reason=reason, message=message, generation=generation, previous=previous
        ),
    }
    return status, reason, message


async def reconcile_workflow(rt: Runtime, event_type: str | None, body: Mapping[str, Any]) -> None:
    if event_type == "DELETED" or (body.get("metadata") or {}).get("deletionTimestamp"):
        meta = body.get("metadata") or {}
        rt.workflows_written.pop((meta.get("namespace") or "default", meta.get("name") or ""), None)
        return
    with rt.metrics.time_reconcile(WORKFLOW):
        status, reason, message = desired_status(body)
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "default", meta.get("name") or "")
        current = body.get("status") or {}
        written = rt.workflows_written.get(key)
        if written and written.get("observedGeneration") == status["observedGeneration"]:
            current = written  # a stale event from before our own write: do not write twice
        if not cond.status_changed(current, status):
            return
        await rt.client.merge_patch(sluice_path("workflows", *key) + "/status", {"status": status})
        rt.workflows_written[key] = status
        old_reason = (cond.condition(current.get("conditions"), cond.READY) or {}).get("reason")
        if old_reason != reason:
            invalid = reason in (INVALID_SPEC, INVALID_SCHEDULE)
            await post_event(
                rt.client,
                body,
                type_="Warning" if invalid else "Normal",
                reason=reason,
                message=message if invalid else "the workflow is valid",
            )
