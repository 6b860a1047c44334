"""The wire formats of the local model server (docs/serving.md): Open Inference Protocol v2 requests
with the binary tensor data extension, v2 responses (JSON or binary outputs), KServe v1 `:predict`
bodies, and model metadata. Pure functions over bytes and numpy arrays; errors are `BadRequest`
(answered 400 with `{"error": ...}`).

Datatypes: every numeric v2 datatype (FP16/32/64, INT8-64, UINT8-64) is accepted and converted to
FP32, the model's input type, as KServe's built-in runtimes convert to what their framework takes;
BOOL and BYTES are refused. JSON has no NaN or infinity, and binary NaN/Inf values are refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

INPUT_NAME = "inputs"
OUTPUT_NAME = "output_0"
PLATFORM = "tensorflow_keras"
VERSION = "1"
BINARY_TYPES = {
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}


class BadRequest(Exception):
    """A request the server refuses with 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    x: np.ndarray  # [N, F] float32, finite
    id: str | None = None
    binary_output: bool = False
    outputs: list[str] = field(default_factory=lambda: [OUTPUT_NAME])


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _flag(parameters: Any, name: str) -> bool:
    return isinstance(parameters, dict) and parameters.get(name) is True


def rows_from(values: np.ndarray, what: str, n_features: int) -> np.ndarray:
    if values.dtype.kind not in "iuf":
        raise BadRequest(f"{what}: data must be numbers")
    x = values.astype(np.float32, copy=False)
    if x.ndim != 2 or x.shape[1] != n_features or x.shape[0] < 1:
        raise BadRequest(f"{what}: shape {list(x.shape)}, expected [N, {n_features}]")
    if not np.isfinite(x).all():
        raise BadRequest(f"{what}: NaN or infinite values")
    return x


def parse_v2(body: bytes, header_length: bytes | None, n_features: int) -> Request:
    """A v2 inference request (JSON, or JSON header + binary tensors)."""
    if header_length is not None:
        if not (header_length.isdigit() and int(header_length) <= len(body)):
            raise BadRequest("Inference-Header-Content-Length must be the length of the JSON header")
        split = int(header_length)
    else:
        split = len(body)
    try:
        document = orjson.loads(body[:split])
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    document = _object(document, "the request")
    binary = memoryview(body)[split:]
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        count = len(inputs) if isinstance(inputs, list) else 0
        raise BadRequest(f"expected exactly one input tensor ({INPUT_NAME!r}), got {count}")
    tensor = _object(inputs[0], "an input")
    name = tensor.get("name")
    if name != INPUT_NAME:
        raise BadRequest(f"unknown input {name!r}: the model's input is {INPUT_NAME!r}")
    datatype = tensor.get("datatype")
    if datatype not in BINARY_TYPES:
        raise BadRequest(
            f"input {name!r}: datatype {datatype!r} is not numeric: expected FP32 "
            f"({', '.join(BINARY_TYPES)} are converted to it)"
        )
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise BadRequest(
            f"input {name!r}: shape {shape!r}, expected [N, {n_features}] (non-negative integers)"
        )
    if len(shape) != 2 or shape[1] != n_features or shape[0] < 1:
        raise BadRequest(f"input {name!r}: shape {shape}, expected [N, {n_features}]")
    size = shape[0] * shape[1]
    parameters = tensor.get("parameters") or {}
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if binary_size is not None:
        dtype = np.dtype(BINARY_TYPES[datatype])
        if binary_size != len(binary) or binary_size != size * dtype.itemsize:
            raise BadRequest(
                f"input {name!r}: binary_data_size {binary_size}, but {len(binary)} bytes follow the "
                f"header and shape {shape} of {datatype} needs {size * dtype.itemsize}"
            )
        values = np.frombuffer(binary, dtype=dtype)
    else:
        if len(binary):
            raise BadRequest("binary data after the JSON header, but no input has binary_data_size")
        try:
            values = np.asarray(tensor.get("data"))
        except ValueError:
            raise BadRequest(f"input {name!r}: data is ragged, expected [N, {n_features}]") from None
        if values.dtype.kind not in "iuf":
            raise BadRequest(f"input {name!r}: data must be numbers")
        if values.size != size:
            raise BadRequest(f"input {name!r}: {values.size} values for shape {shape} ({size} expected)")
    x = rows_from(values.reshape(shape), f"input {name!r}", n_features)
    binary_output = _flag(document.get("parameters"), "binary_data_output")
    outputs = [OUTPUT_NAME]
    requested = document.get("outputs")
    if requested is not None:
        if not isinstance(requested, list) or not requested:
            raise BadRequest("outputs must be a non-empty list of requested outputs")
        outputs = []
        for item in requested:
            out = _object(item, "a requested output")
            if out.get("name") != OUTPUT_NAME:
                raise BadRequest(f"unknown output {out.get('name')!r}: the model's output is {OUTPUT_NAME!r}")
            outputs.append(OUTPUT_NAME)
            parameters = out.get("parameters")
            if isinstance(parameters, dict) and "binary_data" in parameters:
                binary_output = parameters["binary_data"] is True
    request_id = document.get("id")
    return Request(x, request_id if isinstance(request_id, str) else None, binary_output, outputs)


def encode_v2(
    model: str, request_id: str, y: np.ndarray, binary: bool, parameters: dict[str, Any] | None
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(body, extra headers) of a v2 response holding output_0."""
    output: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": list(y.shape)}
    document: dict[str, Any] = {"model_name": model, "model_version": VERSION, "id": request_id}
    if parameters:
        document["parameters"] = parameters
    document["outputs"] = [output]
    if not binary:
        output["data"] = y.ravel()
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), [
            (b"content-type", b"application/json")
        ]
    raw = np.ascontiguousarray(y, dtype="<f4").tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(document)
    return header + raw, [
        (b"content-type", b"application/octet-stream"),
        (b"inference-header-content-length", str(len(header)).encode()),
    ]


def parse_v1(body: bytes, n_features: int) -> np.ndarray:
    """KServe v1 `:predict`: `{"instances": rows}` or `{"inputs": rows}` (rows: lists of features)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    document = _object(document, "the request")
    keys = [k for k in ("instances", "inputs") if k in document]
    if len(keys) != 1:
        raise BadRequest('a v1 request holds exactly one of "instances" or "inputs" (a list of rows)')
    rows = document[keys[0]]
    if not isinstance(rows, list) or not rows:
        raise BadRequest(f"{keys[0]} must be a non-empty list of rows of {n_features} numbers")
    try:
        values = np.asarray(rows)
    except ValueError:
        raise BadRequest(f"{keys[0]}: rows are ragged, expected [N, {n_features}]") from None
    return rows_from(values, keys[0], n_features)


def metadata(model: str, n_features: int, n_targets: int) -> dict[str, Any]:
    return {
        "name": model,
        "versions": [VERSION],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, n_features]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, n_targets]}],
    }
