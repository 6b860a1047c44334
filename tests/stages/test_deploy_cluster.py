"""sluice/deploy's cluster side: the manifests it applies validate against the upstream CRD
schemas, models map to the right storage URIs, readiness and URLs are read correctly."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller import serving
from stages.common import StageError
from stages.deploy import (
    check_triton_repository,
    cluster_model_uri,
    ready_state,
    serving_url,
)
from tests.compiler.upstream import SCHEMAS_ROOT
from tests.stages.conftest import run_stage

UPSTREAM = SCHEMAS_ROOT
CRDS = {
    "kserve": (UPSTREAM / "kserve/serving.kserve.io_inferenceservices.yaml", "v1beta1"),
    "seldon": (UPSTREAM / "seldon/mlops.seldon.io_models.yaml", "v1alpha1"),
    "seldon-v1": (UPSTREAM / "seldon/machinelearning.seldon.io_seldondeployments.yaml", "v1"),
}


@functools.cache
def crd_validator(target: str) -> jsonschema.protocols.Validator:
    path, version = CRDS[target]
    documents = [
        d for d in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d
    ]
    crd = next(d for d in documents if d.get("kind") == "CustomResourceDefinition")
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "artifacts" / "train" / "model"
    directory.mkdir(parents=True)
    return directory


@pytest.mark.parametrize("target", sorted(CRDS))
@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "min_replicas": 1,
            "max_replicas": 3,
            "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "2Gi"}},
        },
    ],
)
def test_deploy_manifests_validate_against_upstream_crds(
    target: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target == "kserve" and options:
        options = {**options, "canary_traffic_percent": 10}
    monkeypatch.setenv("SLUICE_ARTIFACTS_PVC", "run-abc-artifacts")
    uri = cluster_model_uri(model_dir(tmp_path), target)
    manifest = serving.serving_manifest(target, name="sum-of-two", model_uri=uri, namespace="ml", **options)
    errors = sorted(crd_validator(target).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]
    assert uri in str(manifest)


def test_the_schema_check_catches_a_broken_manifest() -> None:
    manifest = serving.serving_manifest("kserve", name="sum", model_uri="pvc://c/m/triton", min_replicas=1)
    manifest["spec"]["predictor"]["minReplicas"] = "one"
    assert list(crd_validator("kserve").iter_errors(manifest))


def test_model_uris_follow_each_runtime_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = model_dir(tmp_path)
    monkeypatch.setenv("SLUICE_ARTIFACTS_PVC", "claim")
    # KServe (Triton runtime) and Seldon Core 1 (TRITON_SERVER) load the repository;
    # Seldon Core 2 loads the model folder inside it.
    assert cluster_model_uri(directory, "kserve") == "pvc://claim/train/model/triton"
    assert cluster_model_uri(directory, "seldon-v1") == "pvc://claim/train/model/triton"
    assert cluster_model_uri(directory, "seldon") == "pvc://claim/train/model/triton/model"
    monkeypatch.setenv("SLUICE_ARTIFACTS_ROOT", str(tmp_path))
    assert cluster_model_uri(directory, "kserve") == "pvc://claim/artifacts/train/model/triton"
    monkeypatch.delenv("SLUICE_ARTIFACTS_PVC")
    with pytest.raises(StageError, match="SLUICE_ARTIFACTS_PVC"):
        cluster_model_uri(directory, "kserve")


def test_a_model_without_a_triton_repository_is_refused_before_anything_is_applied(
    tmp_path: Path,
) -> None:
    directory = model_dir(tmp_path)
    (directory / "model.json").write_text("{}")
    (directory / "saved_model/1").mkdir(parents=True)  # what an older Sluice wrote
    with pytest.raises(StageError, match=r"no Triton model repository \(triton/model/config.pbtxt"):
        check_triton_repository(directory)
    run = run_stage(
        "deploy",
        ["--model", str(directory), "--target", "seldon-v1"],
        tmp_path,
        ("url",),
        env={"SLUICE_EXECUTOR": "", "SLUICE_ARTIFACTS_PVC": "claim", "KUBECONFIG": str(tmp_path / "none")},
    )
    assert run.returncode == 1 and "no Triton model repository" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and run.results == {}
    (directory / "triton/model/1/model.savedmodel").mkdir(parents=True)
    (directory / "triton/model/1/model.savedmodel/saved_model.pb").write_bytes(b"")
    with pytest.raises(StageError, match="no Triton model repository"):  # still no config.pbtxt
        check_triton_repository(directory)
    (directory / "triton/model/config.pbtxt").write_text('name: "model"\n')
    check_triton_repository(directory)


def test_ready_state_names_the_condition() -> None:
    assert ready_state("InferenceService", {}) == (False, "no Ready condition yet")
    waiting = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "RevisionMissing", "message": "no pods"}
        ]
    }
    assert ready_state("InferenceService", waiting) == (False, "Ready=False reason=RevisionMissing: no pods")
    assert ready_state("Model", {"conditions": [{"type": "ModelReady", "status": "True"}]})[0] is True
    assert ready_state("SeldonDeployment", {"state": "Available"})[0] is True
    assert ready_state("SeldonDeployment", {"state": "Failed", "description": "bad uri"}) == (
        False,
        "state=Failed: bad uri",
    )


def test_serving_urls() -> None:
    v2 = serving.serving_manifest("kserve", name="sum", model_uri="pvc://c/m/triton", namespace="ml")
    v1: dict[str, Any] = {"spec": {"predictor": {"model": {}}}}
    # What KServe v0.15 writes in RawDeployment: status.url on the ingress domain (resolvable
    # nowhere by default) and the predictor Service's in-cluster address.
    status = {
        "url": "http://sum-ml.example.com",
        "address": {"url": "http://sum-predictor.ml.svc.cluster.local"},
    }
    # KServe v2 is Triton: the model is the repository's folder, at the in-cluster address.
    assert (
        serving_url("InferenceService", v2, status, "sum", "ml")
        == "http://sum-predictor.ml.svc.cluster.local/v2/models/model/infer"
    )
    # a path in the reported address (Serverless mode guesses a model) is replaced by Triton's
    guessed = {"address": {"url": "http://sum.ml.svc.cluster.local/v2/models/sum/infer"}}
    assert (
        serving_url("InferenceService", v2, guessed, "sum", "ml")
        == "http://sum.ml.svc.cluster.local/v2/models/model/infer"
    )
    # status.url alone is never used: the predictor Service is
    for written in ({}, {"url": "http://sum-ml.example.com"}):
        assert (
            serving_url("InferenceService", v2, written, "sum", "ml")
            == "http://sum-predictor.ml.svc.cluster.local/v2/models/model/infer"
        )
    assert (
        serving_url("InferenceService", v1, status, "sum", "ml")
        == "http://sum-predictor.ml.svc.cluster.local/v1/models/sum:predict"
    )
    # Seldon Core 2 serves the Model under its own name behind seldon-mesh, routed by a header.
    assert serving_url("Model", {}, {}, "sum", "ml") == "http://seldon-mesh.ml/v2/models/sum/infer"
    assert serving.get_target("seldon").request_headers("sum") == {"Seldon-Model": "sum"}
    assert serving.get_target("kserve").request_headers("sum") == {}
    assert serving.get_target("seldon-v1").request_headers("sum") == {}
    # Seldon Core 1 writes the whole v2 URL (graph name in the path) to status.address.url...
    deployment = serving.serving_manifest("seldon-v1", name="sum", model_uri="pvc://c/m/triton")
    written = {"address": {"url": "http://sum-default.ml.svc.cluster.local:8000/v2/models/model/infer"}}
    assert serving_url("SeldonDeployment", deployment, written, "sum", "ml") == written["address"]["url"]
    # ...and until it has, the same URL is built from the predictor service and the graph's name.
    assert (
        serving_url("SeldonDeployment", deployment, {}, "sum", "ml")
        == "http://sum-default.ml.svc.cluster.local:8000/v2/models/model/infer"
    )
