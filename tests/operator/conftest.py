"""The operator runs for real (kopf, in this event loop) against the emulated API server over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.api.crds import all_crds
from testsupport.apihttp import http_server, write_kubeconfig
from testsupport.emulator import ApiServer

# the client, the helpers and the operator thread live in testsupport (benchmarks use them too);
# tests keep importing them from here
from testsupport.kubeapi import NAMESPACE, Api, collection_path, eventually, path
from testsupport.operators import RunningOperator, start_operator

__all__ = [
    "NAMESPACE",
    "Api",
    "RunningOperator",
    "collection_path",
    "eventually",
    "path",
    "start_operator",
]


@contextlib.asynccontextmanager
async def serve_emulator(
    server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiServer]:
    """Serve an emulator (or a subclass) over HTTP, with a kubeconfig in KUBECONFIG pointing at it."""
    async with server, http_server(server) as http:
        url = str(http.url).rstrip("/")
        config_path = write_kubeconfig(tmp_path / "kubeconfig", url)
        monkeypatch.setenv("KUBECONFIG", str(config_path))
        server.kubeconfig = str(config_path)
        server.base_url = url
        yield server


@pytest.fixture
async def apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiServer]:
    async with serve_emulator(ApiServer(), tmp_path, monkeypatch) as server:
        yield server


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[Api]:
    client = Api(apiserver, apiserver.base_url)
    for crd in all_crds().values():  # installed like `kubectl apply -f crds/`
        await client.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    # kmock cannot route POST /api/v1/namespaces (it reads "namespaces" as a namespace prefix),
    # so the namespace is stored directly; the operator runs cluster-wide and never lists them.
    apiserver.objects["v1/namespaces", None, NAMESPACE] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "uid": "namespace-uid"},
    }
    yield client
    await client.close()


@pytest.fixture
async def operator(api: Api) -> AsyncIterator[RunningOperator]:
    running = await start_operator()
    yield running
    await running.stop()
