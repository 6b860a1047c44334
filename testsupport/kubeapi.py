"""What kubectl, Tekton and a test do against the emulated API server: plain HTTP calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from testsupport.emulator import ApiServer

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


async def until(check: Callable[..., object], timeout: float, what: str) -> None:
    """Wait until the synchronous `check` is true, polled every 10 ms so that a benchmark sees the
    moment closely; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
