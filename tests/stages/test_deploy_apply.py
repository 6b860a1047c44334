"""sluice/deploy against a Kubernetes API over real HTTP (the operator tests' kmock emulator, with
the upstream KServe CRD installed, so admission checks the applied manifest against its schema).
The test plays KServe's part by writing the status KServe would write."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from stages.common import StageError
from tests.compiler.upstream import SCHEMAS_ROOT
from tests.stages.conftest import Trained, run_stage

emulator = pytest.importorskip("testsupport.emulator")
serve_emulator = pytest.importorskip("tests.operator.conftest").serve_emulator
kmock = pytest.importorskip("kmock")
from kmock._internal import enums  # noqa: E402

from stages.deploy import apply_and_wait  # noqa: E402

# Import in the main thread what the deploy thread would import: CPython 3.11 can fail compiling
# modules in two threads at once ("AST constructor recursion depth mismatch").
pytest.importorskip("kubernetes.client.exceptions")
pytest.importorskip("kubernetes.config")

CRD = SCHEMAS_ROOT / "kserve" / "serving.kserve.io_inferenceservices.yaml"
ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices"
URI = "pvc://run-artifacts/train/model/triton"
APPLIES: list[dict[str, str]] = []  # query parameters of the server-side apply requests seen


class ApplyingApiServer(emulator.ApiServer):  # type: ignore[misc,name-defined]
    """Server-side apply of an object that does not exist yet creates it, as a real API server does."""

    async def _mutate(self, request: Any) -> Any:
        content_type = request.headers.get("Content-Type", request.headers.get("content-type", ""))
        if request.action == enums.action.UPDATE and content_type.startswith("application/apply-patch"):
            APPLIES.append(dict(request.params))
            namespace = None if request.resource in self._cluster_scoped else request.namespace
            existing = self.objects._objects.get((request.resource, namespace, request.name))
            if existing is None or existing.deleted:
                await self._create(request)
                return request
        return await super()._mutate(request)


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, str]]:
    APPLIES.clear()
    async with serve_emulator(ApplyingApiServer(), tmp_path, monkeypatch) as server:
        url = server.base_url
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = next(d for d in yaml.load_all(CRD.read_text(), Loader=loader) if d)
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
            )
            assert response.status in (200, 201), await response.text()
        yield server, url


async def _when_created(url: str, name: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            response = await session.get(f"{url}{ISVC}/{name}")
            if response.status == 200:
                return dict(await response.json())
            await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was never created")


async def _set_status(url: str, name: str, status: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.patch(
            f"{url}{ISVC}/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status == 200, await response.text()


OPTIONS = {"min_replicas": 1, "max_replicas": 2, "canary_traffic_percent": None, "resources": None}


async def test_applies_waits_for_ready_and_returns_the_v2_url(cluster: tuple[Any, str]) -> None:
    _, url = cluster
    deploying = asyncio.create_task(
        asyncio.to_thread(apply_and_wait, "kserve", "adder", URI, "ml", OPTIONS, 20)
    )
    created = await _when_created(url, "adder")
    assert created["spec"]["predictor"]["model"]["storageUri"] == URI
    assert created["spec"]["predictor"]["minReplicas"] == 1
    assert not deploying.done()  # still waiting: no Ready condition yet
    ready = {"type": "Ready", "status": "True"}
    # What KServe writes in RawDeployment: status.url on the ingress domain, address.url in-cluster.
    address = {"url": "http://adder-predictor.ml.svc.cluster.local"}
    await _set_status(
        url, "adder", {"url": "http://adder-ml.example.com", "address": address, "conditions": [ready]}
    )
    # KServe v2 is served by Triton, which knows the model by its folder in the repository; the
    # URL is the in-cluster address, never status.url (it resolves nowhere by default).
    assert await deploying == "http://adder-predictor.ml.svc.cluster.local/v2/models/model/infer"
    assert APPLIES == [{"fieldManager": "sluice-deploy", "force": "true"}]


async def test_reapplying_updates_the_same_resource(cluster: tuple[Any, str]) -> None:
    _, url = cluster
    first = asyncio.create_task(asyncio.to_thread(apply_and_wait, "kserve", "adder", URI, "ml", OPTIONS, 20))
    await _when_created(url, "adder")
    await _set_status(url, "adder", {"url": "http://a", "conditions": [{"type": "Ready", "status": "True"}]})
    await first
    changed = {**copy.deepcopy(OPTIONS), "max_replicas": 5}
    await asyncio.to_thread(apply_and_wait, "kserve", "adder", URI, "ml", changed, 20)
    assert (await _when_created(url, "adder"))["spec"]["predictor"]["maxReplicas"] == 5


async def test_timeout_names_the_resource_and_its_condition(cluster: tuple[Any, str]) -> None:
    _, url = cluster
    deploying = asyncio.create_task(
        asyncio.to_thread(apply_and_wait, "kserve", "slow", URI, "ml", OPTIONS, 1.5)
    )
    await _when_created(url, "slow")
    waiting = {"type": "Ready", "status": "False", "reason": "RevisionMissing", "message": "no ready pods"}
    await _set_status(url, "slow", {"conditions": [waiting]})
    with pytest.raises(StageError) as failure:
        await deploying
    assert str(failure.value) == (
        "InferenceService ml/slow not Ready after 1.5s: Ready=False reason=RevisionMissing: no ready pods"
    )


async def test_the_api_server_rejecting_the_manifest_is_a_clear_failure(cluster: tuple[Any, str]) -> None:
    server, _ = cluster
    server.inject(500, "PATCH", "inferenceservices")
    with pytest.raises(StageError, match=r"applying InferenceService ml/adder failed: injected fault"):
        await asyncio.to_thread(apply_and_wait, "kserve", "adder", URI, "ml", OPTIONS, 5)


@pytest.mark.slow
async def test_the_deploy_stage_serves_a_trained_models_triton_repository(
    cluster: tuple[Any, str], random_pairs: Trained, tmp_path: Path
) -> None:
    """The whole stage, as a compiled step runs it, on a real model directory: KServe is pointed
    at the Triton repository train-keras wrote, and the URL names the model inside it."""
    _, url = cluster
    model = random_pairs.model
    env = {
        "SLUICE_EXECUTOR": "",
        "SLUICE_NAMESPACE": "ml",
        "SLUICE_ARTIFACTS_PVC": "run-artifacts",
        "SLUICE_ARTIFACTS_ROOT": str(model.parents[1]),
        "SLUICE_WORKFLOW": "sum-of-two",
        "SLUICE_RUN": "sum-of-two-abc",
    }
    args = ["--model", str(model), "--target", "kserve", "--name", "adder", "--timeout", "60"]
    deploying = asyncio.create_task(
        asyncio.to_thread(run_stage, "deploy", args, tmp_path, ("url", "name"), env)
    )
    created = await _when_created(url, "adder")
    storage = created["spec"]["predictor"]["model"]["storageUri"]
    relative = model.relative_to(model.parents[1]).as_posix()
    assert storage == f"pvc://run-artifacts/{relative}/triton"
    # What Triton will find under the mounted storageUri: <repository>/<model>/config.pbtxt + 1/.
    repository = model.parents[1] / storage.removeprefix("pvc://run-artifacts/")
    assert (repository / "model/config.pbtxt").is_file()
    assert (repository / "model/1/model.savedmodel/saved_model.pb").is_file()
    ready = {"type": "Ready", "status": "True"}
    await _set_status(url, "adder", {"url": "http://adder-ml.example.com", "conditions": [ready]})
    run = await deploying
    assert run.returncode == 0, run.stderr
    url_output = "http://adder-predictor.ml.svc.cluster.local/v2/models/model/infer"
    assert run.results == {"url": url_output, "name": "adder"}
    # labelled like everything Sluice creates: the documented uninstall finds it
    labels = created["metadata"]["labels"]
    assert labels["sluice.dev/workflow"] == "sum-of-two" and labels["sluice.dev/run"] == "sum-of-two-abc"
