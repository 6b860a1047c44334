"""The operator runs for real (kopf, in this event loop) against the emulated API server over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import kmock
import pytest

from controller.operator.crds import all_crds
from controller.operator.main import operate
from controller.operator.runtime import Runtime
from controller.operator.settings import OperatorConfig
from tests.operator.emulator import ApiServer, write_kubeconfig

T = TypeVar("T")
NAMESPACE = "ml"


class Api:
    """What kubectl, Tekton and a test do: plain HTTP calls to the API server."""

    def __init__(self, server: ApiServer, base: str):
        self.server = server
        self.base = base.rstrip("/")
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None, *, patch: str = "merge") -> Any:
        headers = {}
        if method == "PATCH":
            headers["Content-Type"] = (
                "application/merge-patch+json" if patch == "merge" else "application/json-patch+json"
            )
        async with self.session.request(method, self.base + path, json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise AssertionError(f"{method} {path} -> {response.status}: {data}")
            return data

    async def try_call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body) as response:
            return response.status, await response.json(content_type=None)

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object from its manifest (like `kubectl create -f`)."""
        return await self.call("POST", collection_path(obj), obj)

    async def get(self, path: str) -> dict[str, Any] | None:
        async with self.session.get(self.base + path) as response:
            if response.status == 404:
                return None
            return await response.json(content_type=None)


def collection_path(obj: dict[str, Any]) -> str:
    api_version: str = obj["apiVersion"]
    plural = obj["kind"].lower() + "s"
    if plural == "customresourcedefinitions":
        return "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    namespace = (obj.get("metadata") or {}).get("namespace") or NAMESPACE
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


def path(group_version: str, plural: str, name: str | None = None, namespace: str = NAMESPACE) -> str:
    prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: last={last!r}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serve_emulator(
    server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiServer]:
    """Serve an emulator (or a subclass) over HTTP, with a kubeconfig in KUBECONFIG pointing at it."""
    async with server, kmock.Server(server) as http:
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


class RunningOperator:
    """The operator in its own thread and event loop, as in its own process.

    kopf treats every task created in its loop after startup as its own and waits for them on
    exit; in a separate loop the emulator's open watch connections are not mistaken for those.
    """

    def __init__(self, config: OperatorConfig | None = None):
        self.runtime = Runtime(config=config or OperatorConfig.for_tests())
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(operate(self.runtime, stop_flag=self.stop_flag, ready_flag=self.ready_flag))
        except BaseException as exc:  # reported to the test by start()/stop()
            self.error = exc

    async def start(self) -> None:
        self.thread.start()
        await eventually(
            lambda: _true(self.runtime.health.ready or not self.thread.is_alive()), what="operator readiness"
        )
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 20)
        assert not self.thread.is_alive(), "the operator did not stop"

    @property
    def metrics_url(self) -> str:
        assert self.runtime.endpoint is not None
        return f"http://127.0.0.1:{self.runtime.endpoint.port}"


async def start_operator(config: OperatorConfig | None = None) -> RunningOperator:
    running = RunningOperator(config)
    await running.start()
    return running


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def operator(api: Api) -> AsyncIterator[RunningOperator]:
    running = await start_operator()
    yield running
    await running.stop()
