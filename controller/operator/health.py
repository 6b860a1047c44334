"""The operator's HTTP endpoint: `/metrics` (Prometheus), `/healthz` (liveness), `/readyz`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from controller.operator.metrics import OperatorMetrics


@dataclass
class Health:
    """What the probes report: ready once the handlers run; alive while the loop answers."""

    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False


class Endpoint:
    def __init__(self, metrics: OperatorMetrics, health: Health, host: str, port: int):
        self._metrics = metrics
        self._health = health
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        app.router.add_get("/readyz", self._serve_ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        uptime = round(time.monotonic() - self._health.started_at, 1)
        return web.json_response({"status": "ok", "uptimeSeconds": uptime})

    async def _serve_ready(self, request: web.Request) -> web.Response:
        if self._health.ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "starting"}, status=503)
