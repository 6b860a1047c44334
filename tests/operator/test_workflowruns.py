"""WorkflowRun -> exactly one PipelineRun, and Tekton's status mirrored back, for real over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from controller.operator import conditions as cond
from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually, path, start_operator
from tests.operator.test_workflows import sum_of_two, workflow_condition

SLUICE = "sluice.dev/v1alpha1"
SHA = "3f2a9c1d4b5e6f708192a3b4c5d6e7f8091a2b3c"


async def sluice_cli(api: Api, *args: str) -> Any:
    """`sluice ARGS` as a process against the emulated cluster; its JSON output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli.main",
        *args,
        env={**os.environ, "KUBECONFIG": api.server.kubeconfig},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


def workflow_run(name: str, workflow: str = "sum-of-two", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": SLUICE,
        "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"workflowRef": {"name": workflow}, **spec},
    }


async def get_run(api: Api, name: str) -> dict[str, Any] | None:
    return await api.get(path(SLUICE, "workflowruns", name))


async def run_status(api: Api, name: str) -> dict[str, Any]:
    return ((await get_run(api, name)) or {}).get("status") or {}


async def wait_phase(api: Api, name: str, phase: str, timeout: float = 10) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = await run_status(api, name)
        return status if status.get("phase") == phase else None

    return await eventually(check, timeout=timeout, what=f"run {name} {phase}")


async def pipelinerun_of(api: Api, name: str) -> dict[str, Any]:
    return await eventually(
        lambda: api.get(path(tekton.TEKTON, "pipelineruns", name)), what=f"PipelineRun {name}"
    )


async def start(api: Api, run: str = "run-1", workflow: str = "sum-of-two") -> dict[str, Any]:
    if await api.get(path(SLUICE, "workflows", workflow)) is None:
        await api.apply(sum_of_two(workflow))
    await api.apply(workflow_run(run, workflow, inputs={"samples": 500}))
    return await pipelinerun_of(api, run)


async def test_a_run_makes_exactly_one_owned_labelled_pipelinerun(
    api: Api, operator: RunningOperator
) -> None:
    pipelinerun = await start(api)
    run = await get_run(api, "run-1")
    assert run is not None
    meta = pipelinerun["metadata"]
    assert meta["name"] == "run-1"
    assert meta["labels"]["sluice.dev/run"] == "run-1"
    assert meta["labels"]["sluice.dev/workflow"] == "sum-of-two"
    [owner] = meta["ownerReferences"]
    assert owner["kind"] == "WorkflowRun" and owner["uid"] == run["metadata"]["uid"] and owner["controller"]
    params = {p["name"]: p["value"] for p in pipelinerun["spec"]["params"]}
    assert params["samples"] in (500, "500")

    status = await wait_phase(api, "run-1", "Pending")
    assert status["pipelineRunRef"] == {"name": "run-1"}
    assert cond.is_true(status["conditions"], "Reconciling")
    assert run["metadata"]["finalizers"] == ["sluice.dev/finalizer"]
    await asyncio.sleep(0.3)  # nothing else happens: still one PipelineRun
    assert len(api.server.objects_of("tekton.dev/v1/pipelineruns")) == 1


async def test_tekton_status_is_mirrored_running_then_succeeded_with_outputs(
    api: Api, operator: RunningOperator
) -> None:
    pipelinerun = await start(api)
    prepare = await tekton.create_taskrun(api, pipelinerun, "prepare")
    gate = await tekton.create_taskrun(api, pipelinerun, "deploy-gate")
    children = [tekton.child("run-1", "prepare"), tekton.child("run-1", "deploy-gate")]
    running = tekton.status("Unknown", "Running", startTime="2026-01-01T00:00:05Z")
    await tekton.set_taskrun(api, NAMESPACE, prepare, running)
    progress = "Tasks Completed: 0 (Failed: 0, Cancelled 0)"
    started = "2026-01-01T00:00:01Z"
    await tekton.set_pipelinerun(
        api,
        NAMESPACE,
        "run-1",
        tekton.status("Unknown", "Running", progress, startTime=started, childReferences=children),
    )
    await wait_phase(api, "run-1", "Running")

    # the PipelineRun and its TaskRuns arrive on separate watches, in any order: the mirrored
    # status converges once both are seen
    async def steps_running() -> dict[str, Any] | None:
        current = await run_status(api, "run-1")
        running = [{"name": "prepare", "phase": "Running", "startTime": "2026-01-01T00:00:05Z"}]
        return current if current.get("steps") == running else None

    status = await eventually(steps_running, what="steps mirrored from the TaskRun")
    assert status["phase"] == "Running"
    assert status["startTime"] == "2026-01-01T00:00:01Z"
    assert cond.condition(status["conditions"], "Ready")["status"] == "Unknown"

    done = tekton.status(
        "True", "Succeeded", startTime="2026-01-01T00:00:05Z", completionTime="2026-01-01T00:00:30Z"
    )
    await tekton.set_taskrun(api, NAMESPACE, prepare, done)
    await tekton.set_taskrun(api, NAMESPACE, gate, tekton.status("True", "Succeeded"))
    await tekton.set_pipelinerun(
        api,
        NAMESPACE,
        "run-1",
        {
            **tekton.status("True", "Succeeded", "Tasks Completed: 5 (Failed: 0, Cancelled 0)"),
            "startTime": started,
            "completionTime": "2026-01-01T00:02:00Z",
            "childReferences": children,
            "skippedTasks": [{"name": "deploy", "reason": "When Expressions evaluated to false"}],
            "results": [
                {"name": "prediction-url", "value": "http://sum-of-two.ml.example.com/v2/models/m/infer"}
            ],
        },
    )
    await wait_phase(api, "run-1", "Succeeded")

    async def steps_done() -> dict[str, Any] | None:
        current = await run_status(api, "run-1")
        phases = [(s["name"], s["phase"]) for s in current.get("steps") or []]
        return current if phases == [("prepare", "Succeeded"), ("deploy", "Skipped")] else None

    status = await eventually(steps_done, what="steps mirrored from the TaskRuns")
    assert status["completionTime"] == "2026-01-01T00:02:00Z"
    assert status["outputs"] == {"prediction-url": "http://sum-of-two.ml.example.com/v2/models/m/infer"}
    ready = cond.condition(status["conditions"], "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Succeeded"
    assert cond.condition(status["conditions"], "Reconciling") is None
    assert status["observedGeneration"] == 1

    async def workflow_last_run() -> dict[str, Any] | None:
        wf = await api.get(path(SLUICE, "workflows", "sum-of-two"))
        last = ((wf or {}).get("status") or {}).get("lastRun") or {}
        return (wf or {}).get("status") if last.get("phase") == "Succeeded" else None

    wf_status = await eventually(workflow_last_run, what="Workflow lastRun")
    assert wf_status["lastRun"]["name"] == "run-1"
    assert wf_status["endpoints"] == [
        {
            "name": "prediction-url",
            "url": "http://sum-of-two.ml.example.com/v2/models/m/infer",
            "run": "run-1",
        }
    ]
    # FuseML's application registry, from the command line
    listed = await sluice_cli(api, "endpoints", "--cluster", "--json")
    assert listed == [
        {
            "namespace": NAMESPACE,
            "workflow": "sum-of-two",
            "output": "prediction-url",
            "url": "http://sum-of-two.ml.example.com/v2/models/m/infer",
            "run": "run-1",
        }
    ]
    assert await sluice_cli(api, "endpoints", "--cluster", "--namespace", "elsewhere", "--json") == []

    async def all_events() -> list[str] | None:
        events = api.server.objects_of("v1/events", NAMESPACE)
        reasons = [e["reason"] for e in events if e["involvedObject"]["name"] == "run-1"]
        return reasons if len(reasons) >= 3 else None

    assert await eventually(all_events, what="events") == ["Created", "Running", "Succeeded"]


async def test_a_failed_pipelinerun_stalls_the_run_with_the_reason(
    api: Api, operator: RunningOperator
) -> None:
    pipelinerun = await start(api)
    train = await tekton.create_taskrun(api, pipelinerun, "train")
    await tekton.set_taskrun(
        api, NAMESPACE, train, tekton.status("False", "Failed", 'step "train" exited with code 1')
    )
    timeout = "PipelineRun run-1 failed to finish within 1h"
    await tekton.set_pipelinerun(
        api,
        NAMESPACE,
        "run-1",
        tekton.status(
            "False",
            "PipelineRunTimeout",
            timeout,
            childReferences=[tekton.child("run-1", "train")],
            completionTime="2026-01-01T01:00:00Z",
        ),
    )
    await wait_phase(api, "run-1", "Failed")
    failed_step = [{"name": "train", "phase": "Failed", "message": 'step "train" exited with code 1'}]

    async def step_failed() -> dict[str, Any] | None:  # the TaskRun's watch may come second
        current = await run_status(api, "run-1")
        return current if current.get("steps") == failed_step else None

    status = await eventually(step_failed, what="the failed step mirrored")
    stalled = cond.condition(status["conditions"], "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "PipelineRunTimeout"
    assert cond.condition(status["conditions"], "Ready")["status"] == "False"

    async def warning() -> dict[str, Any] | None:
        events = api.server.objects_of("v1/events", NAMESPACE)
        return next(
            (e for e in events if e["involvedObject"]["name"] == "run-1" and e["type"] == "Warning"), None
        )

    event = await eventually(warning, what="a Warning event")
    assert event["reason"] == "PipelineRunTimeout"


async def test_an_invalid_run_stalls_without_a_pipelinerun(api: Api, operator: RunningOperator) -> None:
    await api.apply(sum_of_two())
    await api.apply(workflow_run("bad-input", inputs={"samples": "many"}))
    status = await wait_phase(api, "bad-input", "Failed")
    stalled = cond.condition(status["conditions"], "Stalled")
    assert stalled["reason"] == "CompileFailed"
    assert "samples" in stalled["message"]
    await api.apply(workflow_run("no-workflow", workflow="missing"))
    waiting = await eventually(
        lambda: _reason(api, "no-workflow", "WorkflowNotFound"), what="waiting for the workflow"
    )
    assert waiting["phase"] == "Pending"
    # The workflow appears later: the run proceeds by itself (a temporary condition, retried).
    await api.apply(sum_of_two("missing"))
    await pipelinerun_of(api, "no-workflow")
    assert await api.get(path(tekton.TEKTON, "pipelineruns", "bad-input")) is None


async def _reason(api: Api, name: str, reason: str) -> dict[str, Any] | None:
    status = await run_status(api, name)
    ready = cond.condition(status.get("conditions"), "Ready") or {}
    return status if ready.get("reason") == reason else None


async def test_a_restart_never_makes_a_second_pipelinerun(api: Api) -> None:
    first = await start_operator()
    await start(api)
    await wait_phase(api, "run-1", "Pending")
    await first.stop()
    # As if the operator died between creating the PipelineRun and writing the status.
    await api.call("PATCH", path(SLUICE, "workflowruns", "run-1") + "/status", {"status": None})

    second = await start_operator()
    try:
        status = await wait_phase(api, "run-1", "Pending")
        assert status["pipelineRunRef"] == {"name": "run-1"}
        assert len(api.server.objects_of("tekton.dev/v1/pipelineruns")) == 1
        await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("Unknown", "Running"))
        await wait_phase(api, "run-1", "Running")
    finally:
        await second.stop()
    assert len(api.server.objects_of("tekton.dev/v1/pipelineruns")) == 1


async def test_injected_api_errors_are_retried_and_recover(api: Api, operator: RunningOperator) -> None:
    server = api.server
    await api.apply(sum_of_two())
    await eventually(lambda: workflow_condition(api, "sum-of-two", "Ready"), what="workflow Ready")
    server.inject(500, "POST", "pipelineruns", times=2)
    server.inject(429, "POST", "pipelineruns", times=1, retry_after=0)
    server.inject(409, "PATCH", "workflowruns", subresource="status", times=2)
    server.inject(503, "GET", "workflows", times=1)
    await api.apply(workflow_run("run-1", inputs={"samples": 500}))
    pipelinerun = await pipelinerun_of(api, "run-1")
    assert pipelinerun["metadata"]["name"] == "run-1"
    await wait_phase(api, "run-1", "Pending")
    server.inject(500, "PATCH", "workflowruns", subresource="status", times=3)
    await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("Unknown", "Running"))
    await wait_phase(api, "run-1", "Running")
    assert len(server.objects_of("tekton.dev/v1/pipelineruns")) == 1
    text = await _metrics(api, operator)
    assert 'sluice_api_errors_total{code="5xx",kind="pipelineruns",verb="post"} 2.0' in text
    assert 'sluice_api_errors_total{code="429",kind="pipelineruns",verb="post"} 1.0' in text
    assert 'sluice_api_errors_total{code="409",kind="workflowruns",verb="patch"} 2.0' in text


async def test_deleting_a_running_run_cancels_its_pipelinerun_first(
    api: Api, operator: RunningOperator
) -> None:
    await start(api)
    await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("Unknown", "Running"))
    await wait_phase(api, "run-1", "Running")
    await api.call("DELETE", path(SLUICE, "workflowruns", "run-1"))

    async def gone() -> bool:
        return await get_run(api, "run-1") is None

    await eventually(gone, what="the run deleted")
    history = api.server.objects[tekton.TEKTON + "/pipelineruns", NAMESPACE, "run-1"].history
    cancelled = [v for v in history if v is not None and (v.get("spec") or {}).get("status") == "Cancelled"]
    assert cancelled, "the PipelineRun was never cancelled"
    # Ordering: the cancel patch happened while the run still held its finalizer.
    requests = list(api.server._requests)
    cancel_at = next(
        i
        for i, r in enumerate(requests)
        if r.method == "PATCH"
        and r.resource is not None
        and r.resource.plural == "pipelineruns"
        and (r.data or {}).get("spec", {}).get("status") == "Cancelled"
    )
    release_at = max(
        i
        for i, r in enumerate(requests)
        if r.method == "PATCH"
        and r.resource is not None
        and r.resource.plural == "workflowruns"
        and r.subresource is None
    )
    assert cancel_at < release_at
    # Owned by the run, the PipelineRun is garbage-collected after it.
    await eventually(
        lambda: _absent(api, path(tekton.TEKTON, "pipelineruns", "run-1")), what="PipelineRun GC"
    )


async def _absent(api: Api, where: str) -> bool:
    return await api.get(where) is None


async def _metrics(api: Api, operator: RunningOperator) -> str:
    async with api.session.get(operator.metrics_url + "/metrics") as response:
        assert response.status == 200
        return await response.text()


async def test_metrics_count_runs_by_phase_with_bounded_labels(api: Api, operator: RunningOperator) -> None:
    await start(api, "run-1")
    await start(api, "run-2")
    await tekton.set_pipelinerun(api, NAMESPACE, "run-2", tekton.status("Unknown", "Running"))
    await wait_phase(api, "run-2", "Running")
    await wait_phase(api, "run-1", "Pending")

    async def counted() -> str | None:
        text = await _metrics(api, operator)
        running = 'sluice_workflowruns{namespace="ml",phase="Running"} 1.0' in text
        pending = 'sluice_workflowruns{namespace="ml",phase="Pending"} 1.0' in text
        return text if running and pending else None

    text = await eventually(counted, what="runs by phase")
    assert 'sluice_workflowruns{namespace="ml",phase="Succeeded"} 0.0' in text
    assert "sluice_reconcile_duration_seconds_bucket" in text
    assert "run-1" not in text and "run-2" not in text and "http" not in text.replace("# HELP", "")
    async with api.session.get(operator.metrics_url + "/healthz") as response:
        assert response.status == 200
    async with api.session.get(operator.metrics_url + "/readyz") as response:
        assert response.status == 200
    assert await workflow_condition(api, "sum-of-two", "Ready")


async def test_task_pods_run_as_the_configured_service_accounts(api: Api) -> None:
    import dataclasses

    from controller.operator.settings import OperatorConfig

    config = dataclasses.replace(
        OperatorConfig.for_tests(), run_service_account="team-deployer", step_service_account="team-steps"
    )
    running = await start_operator(config)
    try:
        pipelinerun = await start(api)
    finally:
        await running.stop()
    # every task runs as the account with no rights and no token ...
    template = pipelinerun["spec"]["taskRunTemplate"]
    assert template["serviceAccountName"] == "team-steps"
    assert template["podTemplate"]["automountServiceAccountToken"] is False
    # ... but the deploy step, which applies InferenceServices, runs as the deployer
    assert [
        (t["pipelineTaskName"], t["serviceAccountName"]) for t in pipelinerun["spec"]["taskRunSpecs"]
    ] == [("deploy", "team-deployer")]
