"""The local model server: the real KServe Python `ModelServer` over a Sluice model directory.

    python -m stages.serve --model-dir DIR --name NAME --port PORT

Speaks the Open Inference Protocol v2 on 127.0.0.1, or 0.0.0.0:8080 as KServe's predictor container
(the kserve target's `runtime: sluice`): health and readiness, model metadata, `/v2/models/NAME/infer`
(JSON and the binary tensor data extension), KServe v1 `/v1/models/NAME:predict`, KServe's model
repository extension, and `/metrics` (docs/serving.md). A request carries one input `inputs` of
shape [N, features] (any numeric datatype, converted to FP32); anything else is a 400 saying what
was expected. Bodies over --max-body-bytes are refused with 413 before they are read. The model is
called directly (`model(x, training=False)`, stages/predictor.py), never `model.predict`.

The skew guard (stages/serving_guard.py) flags each request's rows outside the training range (in
the response and a header) and scores drift over a sliding window; /metrics exposes both.

Requests that arrive together share one model call (dynamic batching, as KServe's batcher and
Triton do, but without a wait window): a request queues its rows and the queue is run at the next
turn of the event loop, after every request already read from the sockets has queued its own.
A lone request waits for nothing; under concurrent load one call serves several requests.

It also keeps running statistics of the features it has served (count, mean, std, min, max,
correlation) and writes them to --stats-file about once a second, in the format
`sluice/evaluate --serving-stats` reads: the training/serving skew check of real traffic.

`--no-guard` serves without the guard, the statistics and the request metrics: the model call
alone, to measure what they cost (`python -m benchmarks serve`'s guard_cost row).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stages import arguments
from stages.common import quiet_tensorflow
from stages.predictor import SMALL_BATCH_LIMIT
from stages.serving_guard import SkewGuard, load_reference, register_metrics
from stages.serving_http import BodyLimit, FastInfer
from stages.serving_protocol import metadata
from stages.serving_stats import FeatureStatistics

PROG = "sluice-serve"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# A queued request is called this many turns of the event loop later, so that requests whose bytes
# the next polls of the sockets return still join the call. Measured under four concurrent
# clients: 1.1 requests per call with one turn, 1.8 with two, 2.3 with three; each turn costs a
# lone request ~10-20 us.
TURNS_BEFORE_A_CALL = 3


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(
        PROG, "Serve a Sluice model directory with the KServe model server (v2 protocol)."
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True, help="model name in the v2 URLs")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--stats-file", type=Path, help="where to write serving-time feature statistics")
    parser.add_argument(
        "--no-guard",
        action="store_true",
        help="serve without the skew guard, the feature statistics and the request metrics "
        "(for measuring what they cost: `python -m benchmarks serve`)",
    )
    return parser


class RequestBatcher:
    """Joins the rows of the requests queued before a call runs (TURNS_BEFORE_A_CALL turns of the
    event loop after the first of them) into model calls of at most `rows_per_call` rows (a
    larger request is called alone), and hands each request its own slice of the answer."""

    def __init__(self, call: Callable[[np.ndarray], np.ndarray], rows_per_call: int) -> None:
        self.call = call
        self.rows_per_call = rows_per_call
        self.queue: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        if not self.queue:
            self._run_after(loop, TURNS_BEFORE_A_CALL)
        self.queue.append((x, future))
        return await future

    def _run_after(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if turns <= 1:
            loop.call_soon(self._run)
        else:
            loop.call_soon(self._run_after, loop, turns - 1)

    def _run(self) -> None:
        queue, self.queue = self.queue, []
        group: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        for item in queue:
            if group and rows + len(item[0]) > self.rows_per_call:
                self._call(group)
                group, rows = [], 0
            group.append(item)
            rows += len(item[0])
        if group:
            self._call(group)

    def _call(self, group: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        try:
            answers = self.call(group[0][0] if len(group) == 1 else np.concatenate([x for x, _ in group]))
        except Exception as exc:  # every request of the call gets the error; the server goes on
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for x, future in group:
            if not future.done():  # a client that went away cancelled its request
                future.set_result(answers[start : start + len(x)])
            start += len(x)


class NoGuard:
    """--no-guard: flags nothing, keeps no window."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def check(self, x: np.ndarray) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {"method": "none", "state": "unknown"}


class _NoTimer:
    def observe(self, seconds: float) -> None:
        pass


class UnmeteredInfer(FastInfer):
    """--no-guard: the v2 route without its request counter and latency histograms."""

    def count(self, name: str, kind: str, status: int, seconds: float) -> None:
        pass

    def timer(self, name: str) -> Any:
        return _NoTimer()


def make_model_class() -> type:
    """The kserve.Model subclass (built lazily so importing this module stays cheap)."""
    import kserve

    from stages.model_dir import load_model_dir
    from stages.predictor import Predictor

    class KerasRegressor(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str, model_dir: Path, stats_file: Path | None, guard: bool = True) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.stats_file = stats_file
            self.guarded = guard
            # Response ids when the request has none: unique per server without a uuid4 per request.
            prefix = uuid.uuid4()
            self.response_ids = (f"{prefix}-{n}" for n in itertools.count(1))

        def load(self) -> bool:
            import tensorflow as tf

            # One request is a few small matrix products: TF's thread pools would only spin
            # against the event loop for the two cores of a laptop.
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            meta, model = load_model_dir(self.model_dir)
            self.n_features = len(meta["features"])
            self.n_targets = len(meta["targets"])
            self.predictor = Predictor(model, self.n_features)
            self.predictor.warm_up()  # compile before reporting ready
            self.predictor(np.zeros((1, self.n_features), np.float32))
            if self.guarded:
                self.guard: SkewGuard | NoGuard = SkewGuard(meta["features"], load_reference(self.model_dir))
                register_metrics(self.name, self.guard)
                self.statistics = FeatureStatistics(meta["features"], self.stats_file, self.guard)
                self.batcher = RequestBatcher(self.answer, SMALL_BATCH_LIMIT)
            else:  # --no-guard: the model call alone
                self.guard = NoGuard(meta["features"])
                self.statistics = FeatureStatistics(meta["features"], None)
                self.batcher = RequestBatcher(self.predictor, SMALL_BATCH_LIMIT)
            self.ready = True
            return self.ready

        def answer(self, x: np.ndarray) -> np.ndarray:
            y = self.predictor(x)
            self.statistics.add(x)
            return y

        def metadata(self) -> dict[str, Any]:
            return metadata(self.name, self.n_features, self.n_targets)

    return KerasRegressor


def report_bad_requests_as_400() -> None:
    """Malformed requests on KServe's own routes (non-JSON, missing fields) as 400 rather than
    FastAPI's 422."""
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


def bound_model_server(
    host: str,
    rest_server: type | None = None,
    configure: Callable[[Any, Any], None] | None = None,
) -> Any:
    """A `kserve.ModelServer` class whose REST server listens on `host` (KServe's own `start` binds
    0.0.0.0; a laptop endpoint must stay on loopback). `rest_server` replaces KServe's
    `RESTServer` class; `configure(config, dataplane)` may change the uvicorn config (its `app`)
    before the server starts. Also the stock peer of `python -m benchmarks serve`."""
    import kserve
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    server_class = rest_server or RESTServer

    class BoundModelServer(kserve.ModelServer):  # type: ignore[misc]
        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = server_class(
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
            if configure is not None:
                configure(self._rest_server.config, self.dataplane)
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    return BoundModelServer


def serve(
    model_dir: Path,
    name: str,
    port: int,
    host: str,
    limit: int,
    stats_file: Path | None,
    guard: bool = True,
) -> None:
    import logging

    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer

    class QuietRESTServer(RESTServer):  # type: ignore[misc]
        """Without KServe's per-request timing middleware: it resolves each request's route a
        second time only to log a trace line, which this server does not emit."""

        def _add_middlewares(self, app: Any) -> None:
            pass

    def guarded(config: Any, dataplane: Any) -> None:
        # The body limit comes first, before anything reads a body; the v2 infer route is
        # answered before FastAPI's middleware stack. Loopback only: no proxy headers to trust.
        infer = FastInfer if guard else UnmeteredInfer
        config.app = BodyLimit(infer(model_server.app, dataplane.model_registry), limit)
        config.proxy_headers = False

    model = make_model_class()(name, model_dir, stats_file, guard)
    model.load()
    report_bad_requests_as_400()
    # TensorFlow and Keras leave a heap of long-lived objects; a full garbage collection walking
    # them during a request costs milliseconds of tail latency. Move them out of the collector's way.
    gc.collect()
    gc.freeze()
    server_class = bound_model_server(host, rest_server=QuietRESTServer, configure=guarded)
    server = server_class(
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
    serve(
        args.model_dir.resolve(),
        args.name,
        args.port,
        args.host,
        args.max_body_bytes,
        args.stats_file,
        guard=not args.no_guard,
    )


if __name__ == "__main__":
    main()
