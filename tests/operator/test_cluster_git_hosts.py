"""A Codeset on an in-cluster Git server (`gitea.ml.svc`): the operator started with
SLUICE_ALLOW_CLUSTER_GIT_HOSTS=1 (the chart's `operator.git.allowClusterHosts`) compiles a
PipelineRun whose clone step carries the same setting, so the step does not refuse what the
operator admitted; without it the run stalls naming the host, and no PipelineRun is made."""

from __future__ import annotations

from typing import Any

import pytest

from controller.operator import conditions as cond
from tests.operator.conftest import NAMESPACE, Api, path, start_operator
from tests.operator.test_workflowruns import SHA, pipelinerun_of, wait_phase, workflow_run

SLUICE = "sluice.dev/v1alpha1"
SETTING = "SLUICE_ALLOW_CLUSTER_GIT_HOSTS"


def documents() -> list[dict[str, Any]]:
    meta = {"namespace": NAMESPACE}
    workflow = {
        "apiVersion": SLUICE,
        "kind": "Workflow",
        "metadata": {"name": "from-gitea", **meta},
        "spec": {
            "inputs": [{"name": "source", "type": "codeset", "default": "gitea-data"}],
            "steps": [
                {
                    "name": "count",
                    "image": "alpine:3.20",
                    "workingDir": "{{ inputs.source.path }}",
                    "command": ["ls"],
                }
            ],
        },
    }
    codeset = {
        "apiVersion": SLUICE,
        "kind": "Codeset",
        "metadata": {"name": "gitea-data", **meta},
        "spec": {"url": "https://gitea.ml.svc/ml/data.git", "interval": "1h"},
    }
    return [workflow, codeset]


def clone_env(pipelinerun: dict[str, Any]) -> dict[str, str]:
    (clone,) = [t for t in pipelinerun["spec"]["pipelineSpec"]["tasks"] if t["name"].startswith("clone-")]
    return {e["name"]: e.get("value", "") for s in clone["taskSpec"]["steps"] for e in s.get("env", [])}


async def run_from_gitea(api: Api, monkeypatch: pytest.MonkeyPatch, setting: bool, phase: str) -> Any:
    """Start the operator as the chart would (with or without the setting), submit a run of the
    Workflow on the gitea Codeset; its PipelineRun (phase "") or its status once in `phase`."""
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT", raising=False)
    if setting:
        monkeypatch.setenv(SETTING, "1")  # as the chart sets it on the operator's Deployment
    else:
        monkeypatch.delenv(SETTING, raising=False)
    operator = await start_operator()
    try:
        for document in documents():
            await api.apply(document)
        await api.apply(workflow_run("run-gitea", "from-gitea", codesetRevisions={"source": SHA}))
        return await (wait_phase(api, "run-gitea", phase) if phase else pipelinerun_of(api, "run-gitea"))
    finally:
        await operator.stop()


async def test_the_clone_step_carries_the_operators_setting(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelinerun = await run_from_gitea(api, monkeypatch, setting=True, phase="")
    assert clone_env(pipelinerun)[SETTING] == "1"
    steps = [t for t in pipelinerun["spec"]["pipelineSpec"]["tasks"] if not t["name"].startswith("clone-")]
    assert all(SETTING not in str(task) for task in steps), "only the clone step gets it"


async def test_without_the_setting_the_run_stalls_and_no_pipelinerun_is_made(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = await run_from_gitea(api, monkeypatch, setting=False, phase="Failed")
    stalled = cond.condition(status["conditions"], "Stalled")
    assert stalled is not None and stalled["reason"] == "CompileFailed"
    assert "cluster-internal" in stalled["message"] and SETTING in stalled["message"]
    assert await api.get(path("tekton.dev/v1", "pipelineruns", "run-gitea")) is None
