"""The local model server: the real KServe Python `ModelServer` over a Sluice model directory.

    python -m stages.serve --model-dir DIR --name NAME --port PORT

Speaks the Open Inference Protocol v2 on 127.0.0.1 (`/v2/health/live`, `/v2/health/ready`,
`/v2/models/NAME/ready`, `/v2/models/NAME/infer`). A request carries one FP32 input of shape
[N, features] under any name; anything else is a 400 with a message saying what was expected.
Bodies over --max-body-bytes are refused with 413 before they are read. The model is called
through a traced `tf.function` (`model(x, training=False)`), never `model.predict`.

It also keeps running statistics of the features it has served (count, mean, std, min, max,
correlation) and writes them to --stats-file about once a second, in the format
`sluice/evaluate --serving-stats` reads: the training/serving skew check of real traffic.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from stages.common import quiet_tensorflow, stage_parser

PROG = "sluice-serve"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
STATS_INTERVAL_SECONDS = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(PROG, "Serve a Sluice model directory with the KServe model server (v2 protocol).")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True, help="model name in the v2 URLs")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--stats-file", type=Path, help="where to write serving-time feature statistics")
    return parser


class FeatureStatistics:
    """Streaming mean/co-moment/min/max of served rows (Chan et al.'s pairwise update)."""

    def __init__(self, names: list[str], path: Path | None) -> None:
        n = len(names)
        self.names = names
        self.path = path
        self.count = 0
        self.mean = np.zeros(n)
        self.comoment = np.zeros((n, n))
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.written_at = 0.0

    def update(self, x: np.ndarray) -> None:
        batch = x.astype(np.float64)
        m = len(batch)
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        delta = batch_mean - self.mean
        total = self.count + m
        self.comoment += centred.T @ centred + np.outer(delta, delta) * self.count * m / total
        self.mean += delta * m / total
        self.count = total
        self.low = np.minimum(self.low, batch.min(axis=0))
        self.high = np.maximum(self.high, batch.max(axis=0))
        now = time.monotonic()
        if self.path is not None and now - self.written_at >= STATS_INTERVAL_SECONDS:
            self.written_at = now
            self.write()

    def as_dict(self) -> dict[str, Any]:
        variance = np.diag(self.comoment) / max(self.count, 1)
        std = np.sqrt(variance)
        scale = np.sqrt(np.outer(np.diag(self.comoment), np.diag(self.comoment)))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(scale > 0, self.comoment / scale, 0.0)
        np.fill_diagonal(corr, 1.0)
        return {
            "rows": self.count,
            "features": [
                {"name": n, "min": float(lo), "max": float(hi), "mean": float(mu), "std": float(sd)}
                for n, lo, hi, mu, sd in zip(self.names, self.low, self.high, self.mean, std, strict=True)
            ],
            "correlation": [[round(float(v), 6) for v in row] for row in np.clip(corr, -1, 1)],
        }

    def write(self) -> None:
        if self.path is None or self.count == 0:
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.as_dict()), encoding="utf-8")
        os.replace(temporary, self.path)


def make_model_class() -> type:
    """The kserve.Model subclass (built lazily so importing this module stays cheap)."""
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    from stages.train_keras import load_model_dir, make_predictor

    class KerasRegressor(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str, model_dir: Path, stats_file: Path | None) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.stats_file = stats_file

        def load(self) -> bool:
            import tensorflow as tf

            # One request is a few small matrix products: TF's thread pools would only spin
            # against the event loop for the two cores of a laptop.
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            meta, model = load_model_dir(self.model_dir)
            self.n_features = len(meta["features"])
            self.predict_fn = make_predictor(model, self.n_features)
            self.predict_fn(np.zeros((1, self.n_features), np.float32))  # trace before reporting ready
            self.statistics = FeatureStatistics(meta["features"], self.stats_file)
            self.ready = True
            return self.ready

        def features(self, payload: InferRequest) -> np.ndarray:
            if len(payload.inputs) != 1:
                raise InvalidInput(f"expected exactly one input tensor, got {len(payload.inputs)}")
            tensor = payload.inputs[0]
            expected = f"[N, {self.n_features}]"
            if tensor.datatype != "FP32":
                raise InvalidInput(f"input {tensor.name!r}: datatype {tensor.datatype}, expected FP32")
            shape = list(tensor.shape)
            if len(shape) != 2 or shape[1] != self.n_features or shape[0] < 1:
                raise InvalidInput(f"input {tensor.name!r}: shape {shape}, expected {expected}")
            if tensor._raw_data is not None:  # binary tensor extension
                raw = np.frombuffer(tensor._raw_data, dtype="<f4")
            else:
                try:
                    raw = np.asarray(tensor.data)
                except ValueError:
                    raise InvalidInput(
                        f"input {tensor.name!r}: data is ragged, expected {expected}"
                    ) from None
                if raw.dtype.kind not in "iuf":
                    raise InvalidInput(f"input {tensor.name!r}: data must be numbers")
            if raw.size != shape[0] * shape[1]:
                raise InvalidInput(
                    f"input {tensor.name!r}: {raw.size} values for shape {shape} "
                    f"({shape[0] * shape[1]} expected)"
                )
            x = raw.astype(np.float32, copy=False).reshape(shape)
            if not np.isfinite(x).all():
                raise InvalidInput(f"input {tensor.name!r}: NaN or infinite values")
            return x

        def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
            x = self.features(payload)
            y = self.predict_fn(x).numpy()
            self.statistics.update(x)
            output = InferOutput(
                name="output_0", shape=list(y.shape), datatype="FP32", data=y.ravel().tolist()
            )
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=[output]
            )

    return KerasRegressor


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413 before the app reads them."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"request body exceeds {self.limit} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def configure_app(limit: int, dataplane: list[Any]) -> None:
    """Body limit, and malformed requests (non-JSON, missing fields) as 400 rather than FastAPI's 422."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import model_server

    async def bad_request(_request: Any, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "request body is not valid JSON"}, status_code=400)
        # The body is InferenceRequest-or-bytes; the "not bytes" half of each error is noise.
        relevant = [e for e in errors if "bytes" not in e.get("loc", ())] or errors
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in relevant[:3]
        )
        return JSONResponse({"error": f"invalid v2 inference request: {problems}"}, status_code=400)

    model_server.app.add_exception_handler(RequestValidationError, bad_request)  # type: ignore[arg-type]
    # the last added is the outermost: the body limit applies before anything reads a body
    model_server.app.add_middleware(FastInfer, dataplane=dataplane)  # type: ignore[arg-type]
    model_server.app.add_middleware(BodyLimit, limit=limit)  # type: ignore[arg-type]


class FastInfer:
    """ASGI middleware answering `POST /v2/models/{name}/infer` with KServe's own raw-bytes decoder
    (`InferRequest.from_bytes`, the path of its binary-tensor extension) and its dataplane.

    KServe's generic FastAPI route validates the body into a pydantic model, converts it,
    validates the response into another and serializes that: about 0.5 ms of CPU per request for
    what orjson and the same dataplane do in a fraction. Every other path (health, readiness,
    metadata) is KServe's. Errors keep the v2 shape `{"error": ...}`."""

    def __init__(self, app: Any, dataplane: list[Any]) -> None:
        self.app = app
        self.dataplane = dataplane  # filled in by the server once KServe has built its dataplane

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") == "POST" and path.startswith("/v2/models/") and path.endswith("/infer"):
            name = path[len("/v2/models/") : -len("/infer")]
            if name and "/" not in name and self.dataplane:
                body = await _read_body(receive)
                headers = dict(scope.get("headers") or [])
                status, content = await self.infer(
                    name, body, headers.get(b"inference-header-content-length")
                )
                await _respond(send, status, content)
                return
        await self.app(scope, receive, send)

    async def infer(self, name: str, body: bytes, header: bytes | None) -> tuple[int, bytes]:
        import orjson
        from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
        from kserve.protocol.infer_type import InferRequest

        def error(status: int, message: str) -> tuple[int, bytes]:
            return status, orjson.dumps({"error": message})

        if header is not None and not (header.isdigit() and int(header) <= len(body)):
            return error(400, "Inference-Header-Content-Length must be the length of the JSON header")
        length = int(header) if header is not None else len(body)
        try:
            orjson.loads(body[:length])
        except orjson.JSONDecodeError:
            return error(400, "request body is not valid JSON")
        dataplane = self.dataplane[0]
        try:
            request = InferRequest.from_bytes(body, length, name)
            await dataplane.model_ready(name, True)
            response, _ = await dataplane.infer(model_name=name, request=request, headers=None)
            rest, _ = response.to_rest()
        except InvalidInput as exc:
            return error(400, str(exc))
        except ModelNotFound as exc:
            return error(404, str(exc))
        except ModelNotReady as exc:
            return error(503, str(exc))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            return error(400, f"invalid v2 inference request: {type(exc).__name__}: {str(exc)[:120]}")
        except Exception as exc:  # the server keeps serving; no traceback leaves it
            return error(500, f"inference failed: {type(exc).__name__}")
        return 200, rest if isinstance(rest, bytes) else orjson.dumps(rest)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _respond(send: Any, status: int, content: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def serve(model_dir: Path, name: str, port: int, host: str, limit: int, stats_file: Path | None) -> None:
    import asyncio
    import logging

    import kserve
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    class QuietRESTServer(RESTServer):  # type: ignore[misc]
        """Without KServe's per-request timing middleware: it resolves each request's route a
        second time only to log a trace line, which this server does not emit."""

        def _add_middlewares(self, app: Any) -> None:
            pass

    class LoopbackModelServer(kserve.ModelServer):  # type: ignore[misc]
        """KServe's server listens on 0.0.0.0; a laptop endpoint must stay on loopback."""

        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            dataplane.append(self.dataplane)
            self._rest_server = QuietRESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = host
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    model = make_model_class()(name, model_dir, stats_file)
    model.load()
    dataplane: list[Any] = []
    configure_app(limit, dataplane)
    # TensorFlow and Keras leave a heap of long-lived objects; a full garbage collection walking
    # them during a request costs milliseconds of tail latency. Move them out of the collector's way.
    gc.collect()
    gc.freeze()
    server = LoopbackModelServer(
        http_port=port, enable_grpc=False, enable_docs_url=False, enable_latency_logging=False, grace_period=5
    )
    for chatty in ("uvicorn.access", "kserve.trace"):  # no log lines per request (after kserve's set-up)
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        server.start([model])
    finally:
        model.statistics.write()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # kserve parses sys.argv when imported; give it nothing of ours to misread.
    sys.argv = sys.argv[:1]
    quiet_tensorflow()
    serve(args.model_dir.resolve(), args.name, args.port, args.host, args.max_body_bytes, args.stats_file)


if __name__ == "__main__":
    main()
