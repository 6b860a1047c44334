"""The Triton model repository sluice/train-keras writes into a model directory.

`<model dir>/triton/` holds one model named `TRITON_MODEL_NAME`: `config.pbtxt` and
`1/model.savedmodel/`. Every serving target reads it (the repository, or the model folder in it),
and KServe's and Seldon Core 1's v2 URLs carry the model's name (`/v2/models/model/infer`).
"""

from __future__ import annotations

TRITON_REPOSITORY = "triton"
TRITON_MODEL_NAME = "model"
TRITON_MODEL_DIR = f"{TRITON_REPOSITORY}/{TRITON_MODEL_NAME}"
