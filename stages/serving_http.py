"""The ASGI layers in front of KServe's FastAPI application in the local model server: a request
body limit, and the data-plane routes (v2 infer and metadata, v1 predict)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import orjson
from prometheus_client import Counter, Histogram

from stages.serving_protocol import VERSION, BadRequest, encode_v2, parse_v1, parse_v2

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# More `host:port` values a request's Host header may name (comma-separated), for a server reached
# through a published port: `stages.endpoints` sets it for a model server in a container.
ALLOWED_HOSTS_ENV = "SLUICE_SERVE_ALLOWED_HOSTS"


def allowed_hosts(port: int | None, extra: str | None = None) -> frozenset[str]:
    """The Host header values the local model server answers: loopback names with its own port
    (and without one when that port is 80), plus `extra` (default: $SLUICE_SERVE_ALLOWED_HOSTS)."""
    extra = os.environ.get(ALLOWED_HOSTS_ENV, "") if extra is None else extra
    hosts = {h.strip().lower() for h in extra.split(",") if h.strip()}
    if port is not None:
        hosts.update(f"{name}:{port}" for name in LOOPBACK_NAMES)
        if port == 80:
            hosts.update(LOOPBACK_NAMES)
    return frozenset(hosts)


def refuse_foreign(scope: dict[str, Any], extra: frozenset[str] = frozenset()) -> str | None:
    """Why a request must not reach the model server, or None (issue 16): its Host is not a loopback
    name with the server's port (DNS rebinding: a web page's own name pointed at 127.0.0.1), or it
    carries an Origin that is not the server's own (any web page can POST to 127.0.0.1)."""
    headers: dict[bytes, bytes] = {}
    for key, value in scope.get("headers") or []:
        if key.lower() in headers:  # two Host or Origin headers: ambiguous, refused
            return "duplicate Host or Origin header"
        headers[key.lower()] = value
    server = scope.get("server") or (None, None)
    allowed = allowed_hosts(server[1] if len(server) > 1 else None, "") | extra
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if host not in allowed:
        return "Host header is not this server (loopback only)"
    origin = headers.get(b"origin")
    if origin is not None and origin.decode("latin-1").strip().lower() != f"http://{host}":
        return "cross-origin requests are refused"
    return None


class BodyLimit:
    """ASGI middleware: refuse requests whose Host or Origin is not this server's with 403
    (`refuse_foreign`), and request bodies over `limit` bytes with 413 before the app reads them."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.extra_hosts = allowed_hosts(None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            why = refuse_foreign(scope, self.extra_hosts)
            if why is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await self._refuse(send, 403, why)
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._drain(receive, int(length) if length.isdigit() else 0)
            await self._refuse(send)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # Chunked upload: buffer up to the limit, then replay to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                if message.get("more_body"):
                    await self._drain(receive, 0)
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Any, length: int) -> None:
        """Read and drop the rest of an oversized body (bounded), so the client, still sending,
        reads the 413 instead of a connection reset."""
        if length > 16 * self.limit:
            return  # not worth reading: the client will see the connection close
        drained = 0
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return
            drained += len(message.get("body", b""))
            if drained > 16 * self.limit:
                return  # a chunked body that never ends: stop reading, the connection closes

    async def _refuse(self, send: Any, status: int = 413, message: str = "") -> None:
        body = json.dumps({"error": message or f"request body exceeds {self.limit} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class FastInfer:
    """ASGI layer answering the data-plane routes of the local model server itself (docs/serving.md):

    - `POST /v2/models/{name}[/versions/1]/infer`: Open Inference Protocol v2, JSON or the binary
      tensor data extension for inputs and outputs (stages/serving_protocol.py);
    - `GET /v2/models/{name}[/versions/1]`: model metadata (inputs, outputs, platform, versions);
    - `POST /v1/models/{name}:predict`: KServe v1 (`instances` or `inputs` rows -> `predictions`).

    KServe's generic FastAPI route validates the body into a pydantic model, converts it,
    validates the response into another and serializes that, and its `Model.__call__` wraps
    `predict` in three timers: together several times what the model call itself costs on a
    small network. Every other path (health, readiness, the model repository extension, /metrics)
    is KServe's. Errors keep KServe's shape `{"error": ...}`: 400 for a bad request, 404 for an
    unknown model, 503 before it is ready, 500 only when the model itself fails."""

    def __init__(self, app: Any, models: Any) -> None:
        self.app = app
        self.models = models  # KServe's model registry
        self.timers: dict[str, Any] = {}  # model name -> its child of the predict histogram
        self.metrics: dict[str, Any] = {}  # model name -> (requests counter, latency histogram)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = self.route(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        kind, name = route
        started = time.perf_counter()
        body = await read_body(receive)
        headers = dict(scope.get("headers") or [])
        status, content, extra = await self.answer(kind, name, body, headers)
        await respond(send, status, content, extra)
        self.count(name, kind, status, time.perf_counter() - started)

    @staticmethod
    def route(scope: dict[str, Any]) -> tuple[str, str] | None:
        path: str = scope.get("path", "")
        method = scope.get("method")
        if path.startswith("/v2/models/"):
            rest = path[len("/v2/models/") :]
            infer = rest.endswith("/infer")
            if infer:
                rest = rest[: -len("/infer")]
            name, _, version = rest.partition("/versions/")
            if not name or "/" in name or (version and version != VERSION):
                return None
            if infer and method == "POST":
                return "v2", name
            if not infer and "/" not in rest.replace("/versions/", "", 1) and method == "GET":
                return "metadata", name
            return None
        if method == "POST" and path.startswith("/v1/models/") and path.endswith(":predict"):
            name = path[len("/v1/models/") : -len(":predict")]
            if name and "/" not in name:
                return "v1", name
        return None

    async def answer(
        self, kind: str, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        model = self.models.get_model(name)
        if model is None:
            return error(404, f"Model with name {name} does not exist.")
        if not model.ready:
            return error(503, f"Model with name {name} is not ready.")
        if kind == "metadata":
            return 200, orjson.dumps(model.metadata()), []
        try:
            if kind == "v1":
                x = parse_v1(body, model.n_features)
            else:
                request = parse_v2(body, headers.get(b"inference-header-content-length"), model.n_features)
                x = request.x
            flagged = model.guard.check(x)
            started = time.perf_counter()
            y = await model.batcher(x)
            self.timer(name).observe(time.perf_counter() - started)
        except BadRequest as exc:
            return error(exc.status, str(exc))
        except Exception as exc:  # the model failed: the server keeps serving, no traceback leaves it
            return error(500, f"inference failed: {type(exc).__name__}")
        extra: list[tuple[bytes, bytes]] = []
        parameters: dict[str, Any] | None = None
        if flagged is not None:
            rows, outside = flagged
            features = [f for f, out in zip(model.guard.names, outside.any(axis=0), strict=True) if out]
            listed = ",".join(str(int(r)) for r in rows)
            parameters = {
                "sluice_out_of_range_rows": listed,
                "sluice_out_of_range_features": ",".join(features),
            }
            extra.append((OUT_OF_RANGE_HEADER, f"rows={listed}; features={','.join(features)}".encode()))
        if kind == "v1":
            document: dict[str, Any] = {"predictions": y}
            if parameters:
                document["parameters"] = parameters
            return 200, orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), extra
        content, headers_out = encode_v2(
            name, request.id or next(model.response_ids), y, request.binary_output, parameters
        )
        return 200, content, headers_out + extra

    def count(self, name: str, kind: str, status: int, seconds: float) -> None:
        if kind == "metadata":
            return
        metrics = self.metrics.get(name)
        if metrics is None:
            metrics = self.metrics[name] = {}
        key = (kind, status)
        children = metrics.get(key)
        if children is None:
            children = metrics[key] = (
                REQUESTS.labels(name, kind, str(status)),
                LATENCY.labels(name, kind),
            )
        children[0].inc()
        children[1].observe(seconds)

    def timer(self, name: str) -> Any:
        timer = self.timers.get(name)
        if timer is None:
            from kserve.metrics import PREDICT_HIST_TIME, get_labels

            timer = self.timers[name] = PREDICT_HIST_TIME.labels(**get_labels(name))
        return timer


OUT_OF_RANGE_HEADER = b"sluice-out-of-range"
REQUESTS = Counter("sluice_requests", "Inference requests answered", ["model_name", "protocol", "code"])
LATENCY = Histogram(
    "sluice_request_seconds",
    "Time from a request's first byte read to its answer sent",
    ["model_name", "protocol"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


def error(status: int, message: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, orjson.dumps({"error": message}), []


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def respond(
    send: Any, status: int, content: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-length", str(len(content)).encode())]
    if not extra or all(k != b"content-type" for k, _ in extra):
        headers.append((b"content-type", b"application/json"))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
