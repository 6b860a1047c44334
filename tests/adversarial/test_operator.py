"""The operator under faults, against the kmock emulator of tests/operator (extended here, not
replaced): 409/429/500 answers at random on every verb, watch streams dropped after a few events,
the operator stopped between creating a PipelineRun and writing the run's status, and stopped while
its status patches fail. Exactly one PipelineRun per WorkflowRun, and status converges. Also: a
FuseML extension's credential never appears in any object, event, log line or metric.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("controller.operator.main", reason="the operator is not importable")
pytest.importorskip("testsupport.emulator", reason="the operator's emulator harness is missing")

import kmock

from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, eventually, path, serve_emulator, start_operator
from tests.operator.conftest import api as api
from tests.operator.test_workflowruns import SLUICE, run_status, wait_phase, workflow_run
from tests.operator.test_workflows import sum_of_two
from testsupport.emulator import ApiServer, Fault
from testsupport.operators import exposed

REPO = Path(__file__).resolve().parents[2]


def _from_operator(request: kmock.Request) -> bool:
    """kopf's own requests and the operator's client (controller.operator.kube) say who they are."""
    agent = str(request.headers.get("User-Agent", "")).lower()
    return "kopf" in agent or "sluice-operator" in agent


class ChaosApiServer(ApiServer):
    """The emulator, failing `rate` of the non-watch requests at random (seeded) and ending watch
    streams after a few events, as an API server under load or a flaky load balancer does."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.rate = 0.0
        self.watch_events = 0  # end each watch stream after this many events (0: never)
        self.rng = random.Random(int(os.environ.get("SLUICE_CHAOS_SEED", "7")))
        self.injected = 0
        self.dropped = 0
        self.faults_log: list[str] = []

    def _take_fault(self, request: kmock.Request) -> Fault | None:
        fault = super()._take_fault(request)
        if fault is not None or request.resource is None or request.params.get("watch") == "true":
            return fault
        if not _from_operator(request):
            return None  # the test's own calls (kubectl's and Tekton's part) are not the subject
        if self.rng.random() >= self.rate:
            return None
        method = str(request.method.value).upper()
        # 409 only where a real API server sends it to this operator: its status writes (a main-resource
        # merge patch without resourceVersion, as kopf's finalizer patch, never conflicts)
        conflict = method in ("PATCH", "PUT") and request.subresource == "status"
        status = self.rng.choice([409, 429, 500] if conflict else [429, 500, 503])
        self.injected += 1
        self.faults_log.append(
            f"{status} {method} {request.resource.plural}/{request.subresource or ''} {request.name}"
        )
        return Fault(status, method, request.resource.plural, request.subresource, 1, retry_after=0)

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        count = 0
        operator = _from_operator(request)
        async for item in super()._serve_watch(request):
            yield item
            count += 1
            if operator and self.watch_events and count > self.watch_events:
                self.dropped += 1
                return  # the stream just ends; the client must watch again from where it was


@pytest.fixture
async def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ChaosApiServer]:
    """tests/operator's `apiserver` fixture, with the chaotic emulator."""
    # the Codeset handlers' webhook receiver: any free port on loopback, not 9443 on all interfaces
    monkeypatch.setenv("SLUICE_WEBHOOK_PORT", "0")
    monkeypatch.setenv("SLUICE_WEBHOOK_HOST", "127.0.0.1")
    async with serve_emulator(ChaosApiServer(), tmp_path, monkeypatch) as server:
        yield server  # type: ignore[misc]


def pipelineruns(api: Api) -> list[str]:
    return sorted(p["metadata"]["name"] for p in api.server.objects_of("tekton.dev/v1/pipelineruns"))


async def test_random_api_faults_and_dropped_watches_converge_to_one_pipelinerun_per_run(api: Api) -> None:
    server: ChaosApiServer = api.server  # type: ignore[assignment]
    await api.apply(sum_of_two())
    server.rate, server.watch_events = (
        float(os.environ.get("SLUICE_CHAOS_RATE", "0.2")),
        int(os.environ.get("SLUICE_CHAOS_WATCH_EVENTS", "3")),
    )
    operator = await start_operator()
    try:
        runs = [f"run-{i}" for i in range(5)]
        for run in runs:
            await as_user(server, api.apply(workflow_run(run, inputs={"samples": 500})))
        for run in runs:
            try:
                await wait_phase(api, run, "Pending", timeout=40)
            except AssertionError as exc:
                got = await api.get(path(SLUICE, "workflowruns", run))
                raise AssertionError(
                    f"{exc}; {run}: {json.dumps(got)[:1500]}; faults: {server.faults_log}"
                ) from None
        assert pipelineruns(api) == runs
        for run in runs:
            running = tekton.status("Unknown", "Running")
            await as_user(server, tekton.set_pipelinerun(api, NAMESPACE, run, running))
        for run in runs:
            status = await wait_phase(api, run, "Running", timeout=40)
            assert status["pipelineRunRef"] == {"name": run}
    finally:
        await operator.stop()
    assert pipelineruns(api) == runs, "exactly one PipelineRun per run"
    assert server.injected >= 3 and server.dropped >= 3, (server.injected, server.dropped)


async def test_stopped_between_create_and_status_and_during_failing_status_patches(api: Api) -> None:
    server: ChaosApiServer = api.server  # type: ignore[assignment]
    await api.apply(sum_of_two())
    # every status write fails: the operator creates the PipelineRun but never records it
    stuck = server.inject(500, "PATCH", "workflowruns", subresource="status", times=10_000)
    first = await start_operator()
    await api.apply(workflow_run("run-1", inputs={"samples": 500}))
    await eventually(lambda: _truthy(pipelineruns(api)), timeout=20, what="the PipelineRun")
    await eventually(lambda: _truthy(stuck.hits >= 2), timeout=20, what="failed status patches")
    await first.stop()  # killed while its status patches fail
    assert (await run_status(api, "run-1")).get("pipelineRunRef") is None
    stuck.times = stuck.hits  # the API server recovers
    for _ in range(2):  # a new operator twice: each must adopt, never create a second PipelineRun
        second = await start_operator()
        try:
            status = await wait_phase(api, "run-1", "Pending", timeout=20)
            assert status["pipelineRunRef"] == {"name": "run-1"}
        finally:
            await second.stop()
        await api.call("PATCH", path(SLUICE, "workflowruns", "run-1") + "/status", {"status": None})
    third = await start_operator()
    try:
        await tekton.set_pipelinerun(api, NAMESPACE, "run-1", tekton.status("True", "Succeeded"))
        await wait_phase(api, "run-1", "Succeeded", timeout=20)
    finally:
        await third.stop()
    assert pipelineruns(api) == ["run-1"]


async def test_a_run_whose_first_write_failed_is_picked_up_again_without_a_new_event(api: Api) -> None:
    """kopf's first write on a new WorkflowRun (its finalizer) answered 409/422: kopf drops that
    event and would see the run again only when it changes or the watch is relisted (minutes).
    The operator's sweep of unstarted runs nudges it instead."""
    server: ChaosApiServer = api.server  # type: ignore[assignment]
    await api.apply(sum_of_two())
    lost = server.inject(409, "PATCH", "workflowruns", times=1)
    refused = server.inject(422, "PATCH", "workflowruns", times=1)
    operator = await start_operator()
    try:
        await api.apply(workflow_run("run-1", inputs={"samples": 500}))
        await api.apply(workflow_run("run-2", inputs={"samples": 500}))
        await eventually(lambda: _truthy(lost.hits == 1 and refused.hits == 1), timeout=10, what="the faults")
        for run in ("run-1", "run-2"):
            status = await wait_phase(api, run, "Pending", timeout=15)
            assert status["pipelineRunRef"] == {"name": run}
    finally:
        await operator.stop()
    assert pipelineruns(api) == ["run-1", "run-2"]
    for run in ("run-1", "run-2"):
        body = await api.get(path(SLUICE, "workflowruns", run))
        assert "sluice.dev/finalizer" in body["metadata"]["finalizers"]


async def as_user(server: ChaosApiServer, call: Awaitable[Any]) -> Any:
    """A call made by the test in kubectl's or Tekton's place: not the subject, so no faults."""
    rate, server.rate = server.rate, 0.0
    try:
        return await call
    finally:
        server.rate = rate


async def _truthy(value: Any) -> Any:
    return value


# --- a credential in an extension never leaks through the operator ------------------------------------

SECRET_KEY = "Zq8-operator-SECRET-4242"
ACCESS_KEY = "AKIA-operator-ACCESS-4242"


async def test_secret_credential_never_appears_in_objects_events_logs_or_metrics(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    description = (REPO / "tests" / "compiler" / "extensions" / "mlflow" / "description.yaml").read_text()
    await api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mlflow-minio", "namespace": NAMESPACE},
            "data": {
                "secretkey": base64.b64encode(SECRET_KEY.encode()).decode(),
                "accesskey": base64.b64encode(ACCESS_KEY.encode()).decode(),
            },
        }
    )
    await api.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "mlflow",
                "namespace": NAMESPACE,
                "labels": {"sluice.dev/extension": "true"},
            },
            "data": {"description.yaml": description},
        }
    )
    operator = await start_operator()
    try:
        await api.apply(_leaky_workflow())
        await api.apply(workflow_run("run-1", workflow="leaky"))
        pipelinerun = await eventually(
            lambda: api.get(path(tekton.TEKTON, "pipelineruns", "run-1")), timeout=20, what="PipelineRun"
        )
        assert "secretKeyRef" in json.dumps(pipelinerun), "the credential travels as a reference"
        await tekton.set_pipelinerun(
            api,
            NAMESPACE,
            "run-1",
            tekton.status("False", "Failed", "step trainer failed: exit code 3"),
        )
        await wait_phase(api, "run-1", "Failed", timeout=20)
        metrics = await operator.metrics()
    finally:
        await operator.stop()
    everything = exposed(api.server, metrics, caplog.records)
    assert "run-1" in everything and "mlflow-minio" in everything  # the grep sees real content
    for secret in (SECRET_KEY, ACCESS_KEY, base64.b64encode(SECRET_KEY.encode()).decode()):
        assert secret not in everything


def _leaky_workflow() -> dict[str, Any]:
    """A Workflow whose step takes the extension's credential from its Secret and prints it.

    (Workflow resources are native; FuseML `extensions:` selectors are resolved by `sluice compile`
    and `sluice run`, so on the cluster the same Secret reaches a step through `secretKeyRef`.)"""
    return {
        "apiVersion": SLUICE,
        "kind": "Workflow",
        "metadata": {"name": "leaky", "namespace": NAMESPACE},
        "spec": {
            "steps": [
                {
                    "name": "trainer",
                    "image": "busybox",
                    "env": {
                        "AWS_SECRET_ACCESS_KEY": {
                            "secretKeyRef": {"name": "mlflow-minio", "key": "secretkey"}
                        },
                        "AWS_ACCESS_KEY_ID": {"secretKeyRef": {"name": "mlflow-minio", "key": "accesskey"}},
                    },
                    "script": "echo $AWS_SECRET_ACCESS_KEY; exit 3",
                }
            ]
        },
    }


# --- a hostile extension ConfigMap is refused on the run's status ------------------------------------

ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
)
DEEP = "id: " + "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        (ALIAS_BOMB, "description.yaml:1:4: invalid YAML: anchors (&name) are not allowed"),
        (DEEP, "invalid YAML: nesting deeper than"),
    ],
    ids=["alias-bomb", "deep-nesting"],
)
async def test_a_hostile_extension_configmap_fails_the_run_on_its_status(
    api: Api, value: str, refusal: str
) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hostile", "namespace": NAMESPACE, "labels": {"sluice.dev/extension": "true"}},
        "data": {"description.yaml": value},
    }
    await api.apply(configmap)
    operator = await start_operator()
    try:
        await api.apply(sum_of_two())
        await api.apply(workflow_run("run-1"))
        status = await wait_phase(api, "run-1", "Failed", timeout=20)
        # the operator carries on: without the ConfigMap the next run gets its PipelineRun
        await api.call("DELETE", path("v1", "configmaps", "hostile"))
        await api.apply(workflow_run("run-2"))
        await eventually(
            lambda: api.get(path(tekton.TEKTON, "pipelineruns", "run-2")), timeout=20, what="PipelineRun"
        )
    finally:
        await operator.stop()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CompileFailed")
    assert ready["message"].startswith("extension ConfigMap hostile/description.yaml:"), ready["message"]
    assert refusal in ready["message"]
    assert "pipelineRunRef" not in status
