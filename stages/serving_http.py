"""The ASGI layers in front of KServe's FastAPI application in the local model server: a request
body limit, and a thin v2 infer route."""

from __future__ import annotations

import json
import os
import time
from typing import Any

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
    """ASGI layer answering `POST /v2/models/{name}/infer` with KServe's own raw-bytes decoder
    (`InferRequest.from_bytes`, the path of its binary-tensor extension) and the registered
    model's `predict`, recording KServe's `request_predict_seconds` histogram as its server does.

    KServe's generic FastAPI route validates the body into a pydantic model, converts it,
    validates the response into another and serializes that, and its `Model.__call__` wraps
    `predict` in three timers: together several times what the model call itself costs on a
    small network. Every other path (health, readiness, metadata, /metrics) is KServe's. Errors
    keep the v2 shape `{"error": ...}`."""

    def __init__(self, app: Any, models: Any) -> None:
        self.app = app
        self.models = models  # KServe's model registry
        self.timers: dict[str, Any] = {}  # model name -> its child of the predict histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") == "POST" and path.startswith("/v2/models/") and path.endswith("/infer"):
            name = path[len("/v2/models/") : -len("/infer")]
            if name and "/" not in name:
                body = await read_body(receive)
                headers = dict(scope.get("headers") or [])
                status, content = await self.infer(
                    name, body, headers.get(b"inference-header-content-length")
                )
                await respond(send, status, content)
                return
        await self.app(scope, receive, send)

    async def infer(self, name: str, body: bytes, header: bytes | None) -> tuple[int, bytes]:
        import orjson
        from kserve.errors import InvalidInput
        from kserve.protocol.infer_type import InferRequest

        def error(status: int, message: str) -> tuple[int, bytes]:
            return status, orjson.dumps({"error": message})

        model = self.models.get_model(name)
        if model is None:
            return error(404, f"Model with name {name} does not exist.")
        if not model.ready:
            return error(503, f"Model with name {name} is not ready.")
        if header is not None and not (header.isdigit() and int(header) <= len(body)):
            return error(400, "Inference-Header-Content-Length must be the length of the JSON header")
        length = int(header) if header is not None else len(body)
        try:
            request = InferRequest.from_bytes(body, length, name)
            started = time.perf_counter()
            response = await model.predict(request)
            self.timer(name).observe(time.perf_counter() - started)
            rest, _ = response.to_rest()
        except InvalidInput as exc:
            if isinstance(exc.__context__, orjson.JSONDecodeError):  # raised by from_bytes' parse
                return error(400, "request body is not valid JSON")
            return error(400, str(exc))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            return error(400, f"invalid v2 inference request: {type(exc).__name__}: {str(exc)[:120]}")
        except Exception as exc:  # the server keeps serving; no traceback leaves it
            return error(500, f"inference failed: {type(exc).__name__}")
        return 200, rest if isinstance(rest, bytes) else orjson.dumps(rest)

    def timer(self, name: str) -> Any:
        timer = self.timers.get(name)
        if timer is None:
            from kserve.metrics import PREDICT_HIST_TIME, get_labels

            timer = self.timers[name] = PREDICT_HIST_TIME.labels(**get_labels(name))
        return timer


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


async def respond(send: Any, status: int, content: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
