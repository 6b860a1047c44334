"""The Triton model repository of a trained model (KServe v2, Seldon Core 2, Seldon Core 1).

`triton/<name>/config.pbtxt` + `triton/<name>/1/model.savedmodel/`, built from the SavedModel
export that `sluice/train-keras` writes; the config names the tensors Triton's TensorFlow backend
reads from the export's `serving_default` signature.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stages.common import StageError

SAVED_MODEL = "saved_model/1"  # TF Serving (KServe v1, TensorFlow runtime) wants numbered versions
# Triton rejects a request of more rows than this; the dynamic batcher never builds bigger batches.
TRITON_MAX_BATCH_SIZE = 4096
TRITON_TYPES = {
    "DT_FLOAT": "TYPE_FP32",
    "DT_DOUBLE": "TYPE_FP64",
    "DT_INT32": "TYPE_INT32",
    "DT_INT64": "TYPE_INT64",
}


def serving_signature(saved_model: Path) -> dict[str, list[tuple[str, str, list[int]]]]:
    """{"inputs"|"outputs": [(key, TF dtype name, dims with -1 for unknown)]} of the SavedModel's
    `serving_default` signature, read from saved_model.pb as Triton's TensorFlow backend reads it:
    the signature's keys are the tensor names Triton expects in requests and config.pbtxt."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model / "saved_model.pb").read_bytes())
    graph = next(g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags)
    signature = graph.signature_def["serving_default"]
    return {
        side: [
            (key, types_pb2.DataType.Name(info.dtype), [int(d.size) for d in info.tensor_shape.dim])
            for key, info in sorted(getattr(signature, side).items())
        ]
        for side in ("inputs", "outputs")
    }


def triton_config(model_name: str, signature: dict[str, list[tuple[str, str, list[int]]]]) -> str:
    """config.pbtxt naming every tensor, type and shape, so that Triton loads the model the same
    way with or without `--disable-auto-complete-config`; the batch dimension is Triton's."""
    lines = [
        f"name: {json.dumps(model_name)}",
        'platform: "tensorflow_savedmodel"',
        f"max_batch_size: {TRITON_MAX_BATCH_SIZE}",
    ]
    for side, field in (("inputs", "input"), ("outputs", "output")):
        entries = []
        for key, dtype, dims in signature[side]:
            if dtype not in TRITON_TYPES or len(dims) < 2 or dims[0] != -1:
                raise StageError(
                    f"the SavedModel's {side[:-1]} {key!r} is {dtype} {dims}: Triton serving needs "
                    "a batch-first tensor of a numeric type"
                )
            entries.append(
                f"  {{\n    name: {json.dumps(key)}\n    data_type: {TRITON_TYPES[dtype]}\n"
                f"    dims: [ {', '.join(map(str, dims[1:]))} ]\n  }}"
            )
        lines.append(f"{field} [\n" + ",\n".join(entries) + "\n]")
    # Auto-complete would turn the dynamic batcher on; say so, so that either setting serves alike.
    lines.append("dynamic_batching { }")
    return "\n".join(lines) + "\n"


def write_triton_repository(directory: Path) -> str:
    """triton/<name>/config.pbtxt + triton/<name>/1/model.savedmodel/ from the SavedModel export;
    returns the model folder, relative to `directory`."""
    from controller.serving import TRITON_MODEL_DIR, TRITON_MODEL_NAME

    # Version 1, and Triton's default file name for a TensorFlow SavedModel.
    shutil.copytree(directory / SAVED_MODEL, directory / TRITON_MODEL_DIR / "1" / "model.savedmodel")
    config = triton_config(TRITON_MODEL_NAME, serving_signature(directory / SAVED_MODEL))
    (directory / TRITON_MODEL_DIR / "config.pbtxt").write_text(config)
    return TRITON_MODEL_DIR
