"""Tekton status -> WorkflowRun status, and the kstatus helper: the pure parts."""

from __future__ import annotations

from typing import Any

from controller.operator import conditions as cond
from controller.operator.mirror import pipelinerun_phase, run_status, steps_of


def pipelinerun(status: str | None, reason: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "r", "annotations": {"sluice.dev/steps": "prepare,train"}}}
    conditions = [] if status is None else [{"type": "Succeeded", "status": status, "reason": reason}]
    body["status"] = {"conditions": conditions, **extra}
    return body


def test_phases_follow_tekton_reasons() -> None:
    assert pipelinerun_phase(None) == "Pending"
    assert pipelinerun_phase(pipelinerun(None)) == "Pending"
    assert pipelinerun_phase(pipelinerun("Unknown", "PipelineRunPending")) == "Pending"
    assert pipelinerun_phase(pipelinerun("Unknown", "Running")) == "Running"
    assert pipelinerun_phase(pipelinerun("True", "Succeeded")) == "Succeeded"
    assert pipelinerun_phase(pipelinerun("True", "Completed")) == "Succeeded"
    assert pipelinerun_phase(pipelinerun("False", "Failed")) == "Failed"
    assert pipelinerun_phase(pipelinerun("False", "PipelineRunTimeout")) == "Failed"
    assert pipelinerun_phase(pipelinerun("False", "Cancelled")) == "Cancelled"
    assert pipelinerun_phase(pipelinerun("False", "StoppedRunFinally")) == "Cancelled"


def test_steps_list_only_workflow_steps_in_workflow_order() -> None:
    body = pipelinerun(
        "Unknown",
        "Running",
        childReferences=[
            {"name": "r-train", "pipelineTaskName": "train"},
            {"name": "r-clone-src", "pipelineTaskName": "clone-src"},
            {"name": "r-prepare", "pipelineTaskName": "prepare"},
        ],
    )
    taskruns = {"r-prepare": {"status": {"conditions": [{"type": "Succeeded", "status": "True"}]}}}
    assert steps_of(body, taskruns) == [
        {"name": "prepare", "phase": "Succeeded"},
        {"name": "train", "phase": "Pending"},
    ]


def test_cancelled_run_is_done_not_stalled_and_keeps_transition_times() -> None:
    first = run_status(pipelinerun("Unknown", "Running"), {}, pipelinerun_name="r", generation=1, now="T1")
    again = run_status(
        pipelinerun("Unknown", "Running"), {}, pipelinerun_name="r", generation=1, previous=first, now="T2"
    )
    assert not cond.status_changed(first, again)
    assert cond.condition(again["conditions"], "Ready")["lastTransitionTime"] == "T1"
    cancelled = run_status(
        pipelinerun("False", "Cancelled"), {}, pipelinerun_name="r", generation=1, previous=again, now="T3"
    )
    assert cancelled["phase"] == "Cancelled"
    assert cond.condition(cancelled["conditions"], "Stalled") is None
    assert cond.condition(cancelled["conditions"], "Reconciling") is None
    ready = cond.condition(cancelled["conditions"], "Ready")
    assert ready["status"] == "False" and ready["lastTransitionTime"] == "T3"
    assert cancelled["completionTime"]  # terminal phases always carry a completion time


def test_results_become_outputs_as_strings() -> None:
    body = pipelinerun(
        "True", "Succeeded", results=[{"name": "mae", "value": "0.12"}, {"name": "shape", "value": [1, 2]}]
    )
    status = run_status(body, {}, pipelinerun_name="r", generation=3)
    assert status["outputs"] == {"mae": "0.12", "shape": "[1, 2]"}
    assert status["observedGeneration"] == 3


def test_condition_messages_are_one_bounded_line() -> None:
    [ready, reconciling] = cond.kstatus_conditions(
        "progressing", reason="R", message="a\nb" + "x" * 2000, generation=None
    )
    assert "\n" not in ready["message"] and len(ready["message"]) <= cond.MESSAGE_LIMIT
    assert "observedGeneration" not in ready
    assert reconciling["type"] == "Reconciling"
