"""The Triton model repository sluice/train-keras writes for the cluster targets (KServe v2,
Seldon Core 2, Seldon Core 1): layout, a config.pbtxt that parses as Triton's ModelConfig and
names the SavedModel's real serving signature, and a local server that does not depend on it."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.serving import TRITON_MODEL_NAME, storage_path
from stages.common import StageError
from stages.triton_export import TRITON_MAX_BATCH_SIZE, triton_config
from tests.stages.conftest import Trained
from tests.stages.test_serve import deploy, infer_body, post

DATA_TYPES = [
    "TYPE_INVALID",
    "TYPE_BOOL",
    "TYPE_UINT8",
    "TYPE_UINT16",
    "TYPE_UINT32",
    "TYPE_UINT64",
    "TYPE_INT8",
    "TYPE_INT16",
    "TYPE_INT32",
    "TYPE_INT64",
    "TYPE_FP16",
    "TYPE_FP32",
    "TYPE_FP64",
    "TYPE_STRING",
]


@functools.cache
def model_config_class() -> Any:
    """The part of Triton's `inference.ModelConfig` (model_config.proto) Sluice writes, with
    Triton's field names and types, so a misspelt field or enum fails a strict text-format parse."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="sluice_test_triton_model_config.proto", package="inference", syntax="proto3"
    )
    data_type = proto.enum_type.add(name="DataType")
    for number, name in enumerate(DATA_TYPES):
        data_type.value.add(name=name, number=number)

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        added = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.field[-1].type_name = type_name

    one, many = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    enum = (field.TYPE_ENUM, ".inference.DataType")
    message(
        "ModelInput",
        ("name", 1, field.TYPE_STRING, one, ""),
        ("data_type", 2, enum[0], one, enum[1]),
        ("dims", 4, field.TYPE_INT64, many, ""),
    )
    message(
        "ModelOutput",
        ("name", 1, field.TYPE_STRING, one, ""),
        ("data_type", 2, enum[0], one, enum[1]),
        ("dims", 3, field.TYPE_INT64, many, ""),
    )
    message("ModelDynamicBatching")
    message(
        "ModelConfig",
        ("name", 1, field.TYPE_STRING, one, ""),
        ("platform", 2, field.TYPE_STRING, one, ""),
        ("max_batch_size", 4, field.TYPE_INT32, one, ""),
        ("input", 5, field.TYPE_MESSAGE, many, ".inference.ModelInput"),
        ("output", 6, field.TYPE_MESSAGE, many, ".inference.ModelOutput"),
        ("dynamic_batching", 11, field.TYPE_MESSAGE, one, ".inference.ModelDynamicBatching"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def parse_config(text: str) -> Any:
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_class()())


def test_the_strict_parser_catches_what_triton_would_refuse() -> None:
    from google.protobuf.text_format import ParseError

    with pytest.raises(ParseError):
        parse_config('name: "model"\nmax_batch: 8\n')  # no such field
    with pytest.raises(ParseError):
        parse_config('input [ { name: "x" data_type: FP32 dims: [ 2 ] } ]')  # no such enum value


def test_triton_config_names_every_tensor_of_a_wider_model() -> None:
    signature = {
        "inputs": [("positions", "DT_FLOAT", [-1, 7])],
        "outputs": [("output_0", "DT_FLOAT", [-1, 6]), ("output_1", "DT_DOUBLE", [-1, 2, 3])],
    }
    config = parse_config(triton_config("model", signature))
    assert (config.name, config.platform) == ("model", "tensorflow_savedmodel")
    assert config.max_batch_size == TRITON_MAX_BATCH_SIZE > 0
    assert [(i.name, DATA_TYPES[i.data_type], list(i.dims)) for i in config.input] == [
        ("positions", "TYPE_FP32", [7])
    ]
    assert [(o.name, DATA_TYPES[o.data_type], list(o.dims)) for o in config.output] == [
        ("output_0", "TYPE_FP32", [6]),
        ("output_1", "TYPE_FP64", [2, 3]),
    ]
    assert config.HasField("dynamic_batching")


@pytest.mark.parametrize(
    "tensor",
    [("inputs", "DT_FLOAT", [2]), ("inputs", "DT_FLOAT", [4, 2]), ("inputs", "DT_STRING", [-1, 2])],
)
def test_triton_config_refuses_tensors_triton_cannot_batch(tensor: tuple[str, str, list[int]]) -> None:
    with pytest.raises(StageError, match="batch-first tensor of a numeric type"):
        triton_config("model", {"inputs": [tensor], "outputs": [("output_0", "DT_FLOAT", [-1, 1])]})


@pytest.mark.slow
def test_training_writes_a_triton_repository_beside_the_tf_serving_export(random_pairs: Trained) -> None:
    model = random_pairs.model
    repository = model / storage_path("kserve")
    assert sorted(p.name for p in repository.iterdir()) == [TRITON_MODEL_NAME]
    folder = model / storage_path("seldon")
    assert folder == repository / TRITON_MODEL_NAME
    assert sorted(p.name for p in folder.iterdir()) == ["1", "config.pbtxt"]
    assert (folder / "1/model.savedmodel/saved_model.pb").is_file()
    assert (folder / "1/model.savedmodel/variables").is_dir()
    # The TF Serving layout and the Keras model stay.
    assert (model / "saved_model/1/saved_model.pb").is_file() and (model / "model.keras").is_file()
    assert json.loads((model / "model.json").read_text())["triton_model"] == "triton/model"


@pytest.mark.slow
def test_config_pbtxt_is_the_savedmodels_serving_signature(random_pairs: Trained) -> None:
    import tensorflow as tf

    from stages.model_dir import load_model_dir

    folder = random_pairs.model / storage_path("seldon")
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.name == folder.name == TRITON_MODEL_NAME  # Triton requires name == folder
    assert config.platform == "tensorflow_savedmodel" and config.max_batch_size > 0

    exported = tf.saved_model.load(str(folder / "1/model.savedmodel"))
    signature = exported.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    outputs = signature.structured_outputs

    def described(spec: Any) -> tuple[str, list[int]]:
        assert spec.shape[0] is None  # the batch dimension, which Triton adds in front of dims
        return {tf.float32: "TYPE_FP32"}[spec.dtype], list(spec.shape[1:])

    assert (
        {i.name: (DATA_TYPES[i.data_type], list(i.dims)) for i in config.input}
        == {name: described(spec) for name, spec in inputs.items()}
        == {"inputs": ("TYPE_FP32", [2])}
    )
    assert (
        {o.name: (DATA_TYPES[o.data_type], list(o.dims)) for o in config.output}
        == {name: described(spec) for name, spec in outputs.items()}
        == {"output_0": ("TYPE_FP32", [1])}
    )

    # Called by the names in config.pbtxt, the export answers like the Keras model.
    (input_name,) = [i.name for i in config.input]
    (output_name,) = [o.name for o in config.output]
    x = np.array([[12.0, 30.0], [700.0, 250.0]], dtype=np.float32)
    served = signature(**{input_name: tf.constant(x)})[output_name].numpy()
    _, keras_model = load_model_dir(random_pairs.model)
    assert np.allclose(served, keras_model(x, training=False).numpy(), atol=1e-4)


@pytest.mark.slow
def test_the_local_server_does_not_depend_on_the_triton_repository(
    random_pairs: Trained, sluice_home: Path, tmp_path: Path
) -> None:
    """The local target serves model.keras through KServe's Python server: a model directory
    without triton/ serves the same answers at the same kind of URL."""
    copy = tmp_path / "artifacts" / "model"
    shutil.copytree(random_pairs.model, copy, ignore=shutil.ignore_patterns("triton"))
    run = deploy(tmp_path, copy, sluice_home, "--target", "local")
    assert run.returncode == 0, run.stderr
    assert run.results["url"].endswith("/v2/models/sum-of-two/infer")
    status, answer = post(run.results["url"], infer_body([[1.0, 2.0], [300.0, 400.0]]))
    assert status == 200, answer
    assert np.allclose(answer["outputs"][0]["data"], [3.0, 700.0], atol=15)
