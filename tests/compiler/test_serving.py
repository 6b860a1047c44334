"""Serving manifests validate strictly against the KServe and Seldon CRDs."""

from __future__ import annotations

import pytest

from controller.serving import (
    TARGETS,
    TRITON_MODEL_DIR,
    TRITON_MODEL_NAME,
    TRITON_REPOSITORY,
    ServingError,
    served_model_name,
    serving_manifest,
    storage_path,
)

URI = "pvc://pvc-1a2b3c/train/model/triton"


@pytest.mark.parametrize("target", list(TARGETS))  # a new target is validated against its CRD too
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"min_replicas": 1, "max_replicas": 3},
        {"min_replicas": 0, "resources": {"limits": {"cpu": "4", "memory": "8Gi"}}},
    ],
)
def test_manifests_validate(target, options, upstream):
    manifest = serving_manifest(target, name="sum-of-two", model_uri=URI, namespace="ml", **options)
    assert upstream.errors(manifest) == []
    assert manifest["metadata"]["labels"]["sluice.dev/model"] == "sum-of-two"


def test_kserve_inference_service():
    manifest = serving_manifest(
        "kserve", name="m", model_uri=URI, min_replicas=1, max_replicas=3, canary_traffic_percent=20
    )
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = manifest["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["canaryTrafficPercent"]) == (
        1,
        3,
        20,
    )
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == URI
    assert set(model["resources"]) == {"requests", "limits"}


def test_seldon_core_2_model_and_core_1_deployment():
    folder = f"{URI}/{TRITON_MODEL_NAME}"
    model = serving_manifest("seldon", name="m", model_uri=folder, min_replicas=1, max_replicas=2)
    assert (model["apiVersion"], model["kind"]) == ("mlops.seldon.io/v1alpha1", "Model")
    assert model["spec"]["requirements"] == ["tensorflow"] and model["spec"]["storageUri"] == folder
    deployment = serving_manifest("seldon-v1", name="m", model_uri=URI, max_replicas=4)
    assert (deployment["apiVersion"], deployment["kind"]) == (
        "machinelearning.seldon.io/v1",
        "SeldonDeployment",
    )
    (predictor,) = deployment["spec"]["predictors"]
    # Seldon Core 1 speaks v2 to TensorFlow models only through Triton, and calls Triton with the
    # graph's name: it must be the Triton model's, and the container carrying resources matches it.
    assert predictor["graph"]["implementation"] == "TRITON_SERVER"
    assert predictor["graph"]["name"] == TRITON_MODEL_NAME
    assert predictor["componentSpecs"][0]["spec"]["containers"][0]["name"] == TRITON_MODEL_NAME
    assert predictor["graph"]["modelUri"] == URI
    assert deployment["spec"]["protocol"] == "v2"
    assert predictor["componentSpecs"][0]["hpaSpec"]["maxReplicas"] == 4


def test_where_each_target_reads_the_model_and_the_name_its_url_carries():
    # KServe's Triton runtime and Seldon Core 1's TRITON_SERVER load a model repository;
    # Seldon Core 2 loads one model folder and serves it under the Model's own name.
    assert storage_path("kserve") == storage_path("seldon-v1") == TRITON_REPOSITORY == "triton"
    assert storage_path("seldon") == TRITON_MODEL_DIR == f"triton/{TRITON_MODEL_NAME}"
    assert served_model_name("kserve", "adder") == served_model_name("seldon-v1", "adder") == "model"
    assert served_model_name("seldon", "adder") == "adder"


@pytest.mark.parametrize(
    "target,options,message",
    [
        ("kserve", {"name": "Bad_Name"}, "DNS-1035"),
        ("kserve", {"model_uri": ""}, "model URI"),
        ("kserve", {"min_replicas": 3, "max_replicas": 2}, "max_replicas must be >="),
        ("kserve", {"canary_traffic_percent": 101}, "between 0 and 100"),
        ("seldon", {"canary_traffic_percent": 10}, "only supported by the kserve"),
        ("triton", {}, "unknown target"),
        ("kserve", {"resources": {"limit": {"cpu": "1"}}}, "requests and limits"),
    ],
)
def test_bad_arguments(target, options, message):
    arguments = {"name": "m", "model_uri": URI, **options}
    with pytest.raises(ServingError, match=message):
        serving_manifest(target, **arguments)
