"""The API emulator refuses what a real API server refuses (issue 16, item 8): without these checks
a 76-character run name in a label and a 2.4 MiB PipelineRun were stored in tests and failed only
on a cluster. Each request here is one a real kube-apiserver (with etcd's defaults) refuses."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("testsupport.emulator", reason="the operator's emulator harness is missing")

from tests.operator.conftest import NAMESPACE, Api, path
from tests.operator.conftest import api as api
from tests.operator.conftest import apiserver as apiserver
from testsupport.apichecks import MAX_OBJECT_BYTES, MAX_REQUEST_BYTES

CONFIGMAPS = path("v1", "configmaps")


def configmap(name: str = "cm", *, labels: Any = None, annotations: Any = None, data: Any = None) -> Any:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


async def _create(api: Api, body: Any) -> tuple[int, Any]:
    return await api.try_call("POST", CONFIGMAPS, body)


@pytest.mark.parametrize(
    "labels",
    [
        {"sluice.dev/run": "r" * 64},  # the value: 63 at most
        {"sluice.dev/run": "-run"},  # starts with a non-alphanumeric
        {"sluice.dev/run": "a b"},
        {"k" * 64: "v"},  # the name part of the key
        {"Not_A_Subdomain/k": "v"},  # the prefix
        {"/k": "v"},
    ],
)
async def test_invalid_labels_are_refused_422(api: Api, labels: dict[str, str]) -> None:
    status, body = await _create(api, configmap(labels=labels))
    assert status == 422, body
    assert "metadata.labels" in body["message"]
    assert await api.get(path("v1", "configmaps", "cm")) is None


async def test_valid_labels_of_63_characters_are_stored(api: Api) -> None:
    status, body = await _create(api, configmap(labels={"sluice.dev/run": "r" * 63, "a.b/c_d-e": ""}))
    assert status == 201, body


@pytest.mark.parametrize("name", ["UPPER", "a_b", "x" * 254, "-x", "a..b"])
async def test_invalid_object_names_are_refused_422(api: Api, name: str) -> None:
    status, body = await _create(api, configmap(name))
    assert status == 422, body
    assert "metadata.name" in body["message"]


async def test_annotations_over_256_kib_are_refused_422(api: Api) -> None:
    status, body = await _create(api, configmap(annotations={"a": "x" * (256 * 1024)}))
    assert status == 422, body
    assert "metadata.annotations: Too long" in body["message"]


async def test_a_request_body_over_3_mib_is_refused_413(api: Api) -> None:
    status, body = await _create(api, configmap(data={"k": "x" * (MAX_REQUEST_BYTES + 10)}))
    assert status == 413, body
    assert body["reason"] == "RequestEntityTooLarge" and "3145728" in body["message"]


async def test_an_object_over_etcds_limit_is_refused_as_the_api_server_does(api: Api) -> None:
    """2 MiB: under the request limit, over etcd's 1.5 MiB; kube-apiserver passes etcd's error on
    as a 500 (kubernetes/kubernetes#112152), which is why the operator must not rely on a 4xx."""
    status, body = await _create(api, configmap(data={"k": "x" * (2 * 1024 * 1024)}))
    assert status == 500, body
    assert "etcdserver: request is too large" in body["message"]
    status, _ = await _create(api, configmap(data={"k": "x" * (MAX_OBJECT_BYTES - 4096)}))
    assert status == 201


async def test_an_update_that_makes_an_object_too_large_is_refused(api: Api) -> None:
    created = await api.call("POST", CONFIGMAPS, configmap())
    status, body = await api.try_call(
        "PATCH", path("v1", "configmaps", "cm"), {"metadata": {"labels": {"x": "y" * 70}}}
    )
    assert status == 422, body
    stored = await api.get(path("v1", "configmaps", "cm"))
    assert stored is not None
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_a_stale_resource_version_is_a_conflict(api: Api) -> None:
    created = await api.call("POST", CONFIGMAPS, configmap())
    await api.call("PATCH", path("v1", "configmaps", "cm"), {"data": {"a": "1"}})
    status, body = await api.try_call(
        "PATCH",
        path("v1", "configmaps", "cm"),
        {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"a": "2"}},
    )
    assert status == 409, body
