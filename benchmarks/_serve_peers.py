"""The peers of `python -m benchmarks serve`, serving the same Sluice model directory on 127.0.0.1:

- `python -m benchmarks._serve_peers kserve --model-dir DIR --name NAME --port PORT`: KServe's stock
  path, a plain `kserve.Model` subclass whose `predict` takes KServe's `InferRequest` and returns an
  `InferResponse`, served by `kserve.ModelServer` (its FastAPI routes and middleware) in the
  project's venv. Only the host (loopback, not 0.0.0.0) and the per-request latency log are changed.
- `KerasRuntime` (benchmarks/_mlserver_runtime.py): Seldon MLServer's minimal custom runtime, run by
  `mlserver start` in its own venv (.tools/mlserver-venv, see benchmarks/serve.py).

Both call the model the way Sluice does (stages/predictor.Predictor: the XLA-compiled fixed-shape
functions, `model(x, training=False)`, never `model.predict`), so the comparison is of the serving
path alone, not of how the model is called.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def serve_kserve(model_dir: Path, name: str, port: int) -> None:
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from stages.model_dir import load_model_dir
    from stages.predictor import Predictor

    class KerasModel(kserve.Model):  # type: ignore[misc]
        def load(self) -> bool:
            meta, model = load_model_dir(model_dir)
            self.predictor = Predictor(model, len(meta["features"]))
            self.predictor.warm_up()
            self.ready = True
            return True

        def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
            x = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
            y = self.predictor(x)
            output = InferOutput(name="output_0", shape=list(y.shape), datatype="FP32")
            output.set_data_from_numpy(y)
            response_id = payload.id or str(uuid.uuid4())
            return InferResponse(model_name=self.name, infer_outputs=[output], response_id=response_id)

    class LoopbackModelServer(kserve.ModelServer):  # type: ignore[misc]
        """KServe's `start`, with the REST server bound to 127.0.0.1 instead of 0.0.0.0."""

        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = RESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = "127.0.0.1"
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    model = KerasModel(name)
    model.load()
    server = LoopbackModelServer(http_port=port, enable_grpc=False, enable_latency_logging=False)
    server.start([model])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._serve_peers")
    parser.add_argument("peer", choices=["kserve"])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported
    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    serve_kserve(args.model_dir.resolve(), args.name, args.port)


if __name__ == "__main__":
    main()
