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
import sys
import uuid
from pathlib import Path

import numpy as np


def serve_kserve(model_dir: Path, name: str, port: int) -> None:
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse

    from stages.model_dir import load_model_dir
    from stages.predictor import Predictor
    from stages.serve import bound_model_server  # KServe's start, bound to loopback

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

    model = KerasModel(name)
    model.load()
    server = bound_model_server("127.0.0.1")(http_port=port, enable_grpc=False, enable_latency_logging=False)
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
