"""Seldon MLServer's minimal custom runtime for `python -m benchmarks serve` (runs in
.tools/mlserver-venv, with the project on PYTHONPATH): loads the Sluice model directory named by
the model settings' `parameters.uri` with TensorFlow in that venv and calls it the way Sluice does
(stages/predictor.Predictor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class KerasRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        from stages.model_dir import load_model_dir
        from stages.predictor import Predictor

        meta, model = load_model_dir(Path(self.settings.parameters.uri))
        self.predictor = Predictor(model, len(meta["features"]))
        self.predictor.warm_up()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        y = self.predictor(x)
        return InferenceResponse(
            model_name=self.name, id=payload.id, outputs=[NumpyCodec.encode_output("output_0", y)]
        )
