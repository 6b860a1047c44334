"""runPolicy: concurrency Allow/Forbid/Replace and historyLimit pruning, through the real operator."""

from __future__ import annotations

from typing import Any

from controller.operator import conditions as cond
from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually, path
from tests.operator.test_workflowruns import SLUICE, get_run, pipelinerun_of, wait_phase, workflow_run
from tests.operator.test_workflows import sum_of_two


async def with_policy(api: Api, **policy: Any) -> None:
    workflow = sum_of_two()
    workflow["spec"]["runPolicy"] = policy
    await api.apply(workflow)


async def test_forbid_skips_a_run_while_another_is_active(api: Api, operator: RunningOperator) -> None:
    await with_policy(api, concurrency="Forbid")
    await api.apply(workflow_run("run-1"))
    await wait_phase(api, "run-1", "Pending")
    await api.apply(workflow_run("run-2"))
    status = await wait_phase(api, "run-2", "Cancelled")
    ready = cond.condition(status["conditions"], "Ready")
    assert ready["reason"] == "ConcurrencyForbidden" and "run-1" in ready["message"]
    assert await api.get(path(tekton.TEKTON, "pipelineruns", "run-2")) is None


async def test_replace_cancels_the_active_run_and_starts_the_new_one(
    api: Api, operator: RunningOperator
) -> None:
    await with_policy(api, concurrency="Replace")
    await api.apply(workflow_run("run-1"))
    await pipelinerun_of(api, "run-1")
    await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("Unknown", "Running"))
    await wait_phase(api, "run-1", "Running")
    await api.apply(workflow_run("run-2"))
    await pipelinerun_of(api, "run-2")

    async def cancelled() -> bool:
        old = await api.get(path(tekton.TEKTON, "pipelineruns", "run-1"))
        return ((old or {}).get("spec") or {}).get("status") == "Cancelled"

    assert await eventually(cancelled, what="run-1 cancelled")
    # Tekton then reports the cancellation, and the run mirrors it.
    await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("False", "Cancelled"))
    await wait_phase(api, "run-1", "Cancelled")


async def test_history_limit_prunes_the_oldest_finished_runs(api: Api, operator: RunningOperator) -> None:
    await with_policy(api, historyLimit=1)
    for name in ("run-1", "run-2"):
        await api.apply(workflow_run(name))
        await pipelinerun_of(api, name)
        await tekton.set_pipelinerun(api, NAMESPACE, name, tekton.status("True", "Succeeded"))
        await wait_phase(api, name, "Succeeded")

    async def pruned() -> bool:
        return await get_run(api, "run-1") is None

    assert await eventually(pruned, what="run-1 pruned")
    assert await get_run(api, "run-2") is not None
    runs = api.server.objects_of(SLUICE + "/workflowruns", NAMESPACE)
    assert [r["metadata"]["name"] for r in runs] == ["run-2"]
