"""Owner references, WorkflowRun and Workflow parsing, and the CRDs' enums come from one place."""

from __future__ import annotations

from typing import Any

from controller.api import meta
from controller.api.crds import all_crds
from controller.api.workflow import parse_workflow, workflow_object
from controller.api.workflowrun import PHASES, STEP_PHASES, TERMINAL_PHASES, parse_workflowrun_spec
from controller.operator.metrics import RunPhases


def _schema(file: str) -> dict[str, Any]:
    schema: dict[str, Any] = all_crds()[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_owner_reference_names_a_sluice_object() -> None:
    ref = meta.owner_reference(meta.WORKFLOW_RUN, "run-1", "u1", controller=True, block_owner_deletion=True)
    assert ref == {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "WorkflowRun",
        "name": "run-1",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_object_stub() -> None:
    assert meta.object_stub(meta.CODESET, "ml", "models") == {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Codeset",
        "metadata": {"name": "models", "namespace": "ml"},
    }


def test_phases_in_the_crd_are_the_typed_ones() -> None:
    status = _schema("workflowruns.yaml")["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == list(PHASES)
    assert status["steps"]["items"]["properties"]["phase"]["enum"] == list(STEP_PHASES)
    assert set(PHASES) > TERMINAL_PHASES
    runs = RunPhases()
    runs.set("ml", "a", "Bogus")  # the metric knows the same phases
    assert runs.counts() == {("ml", "Pending"): 1}


def test_workflowrun_spec_parsing_tolerates_missing_and_mistyped_parts() -> None:
    sha = "a" * 40
    spec = {"workflowRef": {"name": "wf"}, "inputs": {"n": 1}, "codesetRevisions": {"src": sha}}
    full = parse_workflowrun_spec({"spec": spec})
    assert (full.workflow, dict(full.inputs), dict(full.codeset_revisions)) == ("wf", {"n": 1}, {"src": sha})
    for body in ({}, {"spec": None}, {"spec": {"workflowRef": "wf", "inputs": [1]}}):
        empty = parse_workflowrun_spec(body)
        assert (empty.workflow, dict(empty.inputs), dict(empty.codeset_revisions)) == ("", {}, {})
    required = _schema("workflowruns.yaml")["properties"]["spec"]["required"]
    assert required == ["workflowRef"]


def test_parse_workflow_drops_server_set_metadata() -> None:
    body = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf", "namespace": "ml", "uid": "u1", "resourceVersion": "7", "generation": 2},
        "spec": {"steps": [{"name": "hello", "image": "busybox", "script": "echo hi"}]},
    }
    assert set(workflow_object(body)["metadata"]) == {"name", "namespace", "generation"}
    assert [step.name for step in parse_workflow(body).steps] == ["hello"]
