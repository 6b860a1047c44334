"""The Kubernetes API emulator served over HTTP on loopback, and a kubeconfig pointing at it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import aiohttp.web
import kmock
import yaml

from testsupport.apichecks import MAX_REQUEST_BYTES
from testsupport.emulator import ApiServer


class _RawServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's raw test server reading bodies up to the API server's limit (aiohttp's own is
    1 MiB), so the emulator, not aiohttp, decides what is too large."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        loop = self._loop or asyncio.get_running_loop()

        def request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
            return aiohttp.web.BaseRequest(
                message, payload, protocol, writer, task, loop, client_max_size=2 * MAX_REQUEST_BYTES
            )

        server = aiohttp.web.Server(
            self._handler, loop=self._loop, debug=debug, request_factory=request, **kwargs
        )
        return aiohttp.web.ServerRunner(server, debug=debug, **kwargs)


def http_server(server: ApiServer) -> kmock.Server:
    """The emulator served over HTTP on loopback (`async with http_server(s) as http: http.url`)."""
    return kmock.Server(server, server_cls=_RawServer)


def write_kubeconfig(path: Path, server_url: str) -> Path:
    """A kubeconfig for a plain-HTTP emulator at `server_url` (tests, benchmarks)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server_url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path
