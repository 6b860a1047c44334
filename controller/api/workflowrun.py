"""The WorkflowRun resource: its phases, its CRD schema and its typed spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from controller.api.codeset import COMMIT_PATTERN
from controller.api.meta import API_VERSION, WORKFLOW, WORKFLOW_RUN, owner_reference
from controller.api.openapi import DNS_SUBDOMAIN, conditions_schema, object_schema, time_schema

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
StepPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled", "Skipped"]
PHASES: tuple[Phase, ...] = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")
STEP_PHASES: tuple[StepPhase, ...] = (*PHASES, "Skipped")
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})
# `spec.status` values that cancel a run, as Tekton's PipelineRun `spec.status` spells them (the
# operator copies the value onto the PipelineRun): `Cancelled` stops every task at once, finally
# tasks included; `CancelledRunFinally` stops the running tasks, then runs the finally tasks.
CANCEL_REQUESTS: tuple[str, ...] = ("Cancelled", "CancelledRunFinally")
DEFAULT_CANCEL = "CancelledRunFinally"
MAX_STEP_MESSAGE_LENGTH = 1024


@dataclass(frozen=True)
class WorkflowRunSpec:
    """What a run asks for. Read when the run starts; later changes do not restart it."""

    workflow: str  # workflowRef.name; "" when missing (the run then stalls with InvalidSpec)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    codeset_revisions: Mapping[str, str] = field(default_factory=dict)  # codeset input -> commit
    cancel: str | None = None  # spec.status: one of CANCEL_REQUESTS, or None


def parse_workflowrun_spec(body: Mapping[str, Any]) -> WorkflowRunSpec:
    """The typed spec of a WorkflowRun object; missing or mistyped parts read as empty."""
    spec = body.get("spec") or {}
    if not isinstance(spec, Mapping):
        spec = {}
    ref = spec.get("workflowRef") or {}
    name = ref.get("name") if isinstance(ref, Mapping) else None
    inputs = spec.get("inputs") or {}
    revisions = spec.get("codesetRevisions") or {}
    cancel = spec.get("status")
    return WorkflowRunSpec(
        workflow=name if isinstance(name, str) else "",
        inputs=dict(inputs) if isinstance(inputs, Mapping) else {},
        codeset_revisions=dict(revisions) if isinstance(revisions, Mapping) else {},
        cancel=cancel if cancel in CANCEL_REQUESTS else None,
    )


def run_of_workflow(
    namespace: str,
    name: str,
    workflow: str,
    workflow_uid: str,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    spec: Mapping[str, Any],
) -> dict[str, Any]:
    """A WorkflowRun the operator starts for a Workflow by itself (a trigger, a schedule): owned,
    not controlled, by the Workflow, so deleting the Workflow collects its runs."""
    return {
        "apiVersion": API_VERSION,
        "kind": WORKFLOW_RUN,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
            "ownerReferences": [
                owner_reference(
                    WORKFLOW, workflow, workflow_uid, controller=False, block_owner_deletion=False
                )
            ],
        },
        "spec": {"workflowRef": {"name": workflow}, **spec},
    }


def workflowrun_schema() -> dict[str, Any]:
    """The `openAPIV3Schema` of the WorkflowRun CRD."""
    spec = {
        "type": "object",
        "required": ["workflowRef"],
        "properties": {
            "workflowRef": {
                "type": "object",
                "required": ["name"],
                "description": "The Workflow to run, in the same namespace.",
                "properties": {"name": {**DNS_SUBDOMAIN, "description": "Name of the Workflow."}},
            },
            "inputs": {
                "type": "object",
                "description": "Input values by name; inputs left out take the Workflow's defaults.",
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "codesetRevisions": {
                "type": "object",
                "description": "The commit to check out per codeset input (default: the Codeset's revision).",
                "additionalProperties": {"type": "string", "pattern": COMMIT_PATTERN},
            },
            "status": {
                "type": "string",
                "enum": list(CANCEL_REQUESTS),
                "description": (
                    "Set to cancel the run (as on a Tekton PipelineRun): Cancelled stops every task, "
                    "CancelledRunFinally stops the running tasks, then runs the finally tasks."
                ),
            },
        },
    }
    step = {
        "type": "object",
        "required": ["name", "phase"],
        "properties": {
            "name": {"type": "string"},
            "phase": {"type": "string", "enum": list(STEP_PHASES)},
            "startTime": time_schema("When the step's TaskRun started."),
            "completionTime": time_schema("When it finished."),
            "message": {"type": "string", "maxLength": MAX_STEP_MESSAGE_LENGTH},
        },
    }
    status = {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": list(PHASES)},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": conditions_schema(),
            "startTime": time_schema("When the PipelineRun started."),
            "completionTime": time_schema("When it finished."),
            "pipelineRunRef": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "description": "The Tekton PipelineRun this run created (owned by it).",
            },
            "steps": {"type": "array", "items": step},
            "outputs": {
                "type": "object",
                "description": "Workflow outputs (metrics, model URI, prediction URL) by name.",
                "additionalProperties": {"type": "string"},
            },
        },
    }
    return object_schema(spec, status)
