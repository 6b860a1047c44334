"""`runtime: sluice`: the kserve target's custom predictor, Sluice's own model server in the stages
image (the serving runtime the kind e2e uses: KServe's Triton image is ~15 GB).

Checked against KServe's upstream InferenceService CRD (tests/data/upstream) and the `restricted`
Pod Security profile; what KServe does with the container (STORAGE_URI read by its storage
initializer webhook, /mnt/models, Service port 80 -> container 8080) is KServe v0.15's
pkg/apis/serving/v1beta1/predictor_custom.go, pkg/webhook/admission/pod/
storage_initializer_injector.go and the raw-deployment service reconciler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller import serving
from controller.compiler import compile_run
from controller.compiler.containers import RUN_AS_USER
from controller.spec import load_workflow, load_workflow_text
from controller.spec.stages import STAGES
from tests.compiler.podsecurity import restricted_violations
from tests.compiler.upstream import UpstreamSchemas

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/sluice-stages:0.1.0"
E2E_WORKFLOW = ROOT / "tests" / "e2e" / "repo" / "workflows" / "sum-of-two.yaml"


def sluice_manifest(**extra: Any) -> dict[str, Any]:
    return serving.serving_manifest(
        "kserve",
        name="sum-of-two",
        model_uri="pvc://sluice-models/sluice/sum-of-two/run-1/artifacts/train/model",
        namespace="ml",
        labels=serving.run_labels("sum-of-two", "run-1"),
        runtime="sluice",
        runtime_image=IMAGE,
        **extra,
    )


def test_the_custom_predictor_is_valid_against_kserves_crd() -> None:
    for extra in ({}, {"min_replicas": 1, "max_replicas": 2}, {"canary_traffic_percent": 10}):
        manifest = sluice_manifest(**extra)
        assert UpstreamSchemas().errors(manifest) == []
        predictor = manifest["spec"]["predictor"]
        assert "model" not in predictor  # a custom predictor: containers only
        (container,) = predictor["containers"]
        # KServe finds the model server by this name (constants.InferenceServiceContainerName)
        assert container["name"] == "kserve-container" and container["image"] == IMAGE
        assert container["command"] == ["python", "-m", "stages.serve"]


def test_the_model_comes_through_kserves_storage_initializer() -> None:
    (container,) = sluice_manifest()["spec"]["predictor"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # CustomPredictor.GetStorageUri reads STORAGE_URI; the webhook mounts or downloads it there
    assert env == {
        "STORAGE_URI": "pvc://sluice-models/sluice/sum-of-two/run-1/artifacts/train/model",
        "PROTOCOL": "v2",
    }
    args = container["args"]
    assert args[args.index("--model-dir") + 1] == "/mnt/models"
    # KServe's Service sends port 80 to the first container port; the server listens on it
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--port") + 1] == str(container["ports"][0]["containerPort"]) == "8080"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/models/model/ready", "port": 8080}


def test_the_server_runs_restricted_as_the_stages_images_user() -> None:
    predictor = sluice_manifest()["spec"]["predictor"]
    pod = {k: v for k, v in predictor.items() if k not in ("minReplicas", "maxReplicas")}
    assert restricted_violations(pod) == []
    assert serving.target.STAGES_UID == RUN_AS_USER  # the user stages/Dockerfile sets
    assert pod["securityContext"]["runAsUser"] == pod["containers"][0]["securityContext"]["runAsUser"]
    assert pod["securityContext"]["runAsUser"] == RUN_AS_USER


def test_the_url_is_the_same_as_tritons() -> None:
    target = serving.get_target("kserve")
    status = {"address": {"url": "http://sum-of-two-predictor.ml.svc.cluster.local"}}
    expected = "http://sum-of-two-predictor.ml.svc.cluster.local/v2/models/model/infer"
    assert target.url(sluice_manifest(), status, "sum-of-two", "ml") == expected
    assert target.url(sluice_manifest(), {}, "sum-of-two", "ml") == expected
    triton = serving.serving_manifest("kserve", name="sum-of-two", model_uri="pvc://c/m/triton")
    assert target.url(triton, status, "sum-of-two", "ml") == expected


def test_it_reads_the_model_directory_itself() -> None:
    assert serving.storage_path("kserve", "sluice") == ""
    assert serving.storage_path("kserve") == serving.storage_path("kserve", "triton") == "triton"
    for name in serving.TARGETS:
        assert serving.storage_path(name) == serving.get_target(name).storage_path


def test_without_a_runtime_nothing_changes() -> None:
    base = {"name": "s", "model_uri": "pvc://c/m/triton", "namespace": "ml"}
    assert serving.serving_manifest("kserve", **base) == serving.serving_manifest(
        "kserve", **base, runtime="triton"
    )
    assert "containers" not in serving.serving_manifest("kserve", **base)["spec"]["predictor"]


@pytest.mark.parametrize(
    ("target", "arguments", "message"),
    [
        ("seldon", {"runtime": "sluice", "runtime_image": IMAGE}, "only supported by the kserve target"),
        ("seldon-v1", {"runtime": "sluice", "runtime_image": IMAGE}, "only supported by the kserve target"),
        ("kserve", {"runtime": "sluice"}, "needs the stages image"),
        ("kserve", {"runtime": "sluice", "runtime_image": "a b"}, "needs the stages image"),
        ("kserve", {"runtime": "mlserver"}, "unknown runtime 'mlserver'; use one of: triton, sluice"),
        ("kserve", {"runtime_image": IMAGE}, "runtime_image is only used by runtime 'sluice'"),
    ],
)
def test_what_is_refused(target: str, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(serving.ServingError, match=message):
        serving.serving_manifest(target, name="s", model_uri="pvc://c/m", **arguments)


def _deploy_env(run: dict[str, Any]) -> dict[str, str]:
    for task in run["spec"]["pipelineSpec"]["tasks"]:
        if task["name"] == "deploy":
            (step,) = task["taskSpec"]["steps"]
            return {e["name"]: e.get("value", "") for e in step["env"]}
    raise AssertionError("no deploy task")


def test_the_compiler_hands_the_stages_image_only_to_a_step_that_sets_runtime() -> None:
    assert STAGES["deploy"].image_env == {"runtime": "SLUICE_SERVING_IMAGE"}
    run = compile_run(load_workflow(E2E_WORKFLOW), stages_image=IMAGE)
    assert _deploy_env(run)["SLUICE_SERVING_IMAGE"] == IMAGE
    text = E2E_WORKFLOW.read_text().replace("        runtime: sluice\n", "")
    plain = compile_run(load_workflow_text(text, "sum-of-two.yaml"), stages_image=IMAGE)
    assert "SLUICE_SERVING_IMAGE" not in _deploy_env(plain)


def test_the_e2e_workflow_passes_the_gate_and_uses_the_sluice_runtime() -> None:
    """The values the tutorial measured (docs/tutorial-sum-of-two.md: 20 000 samples, 20 epochs,
    test MAE 0.56) against the default gate max-mae 1.0 that the old e2e (2000 samples) failed."""
    spec = yaml.safe_load(E2E_WORKFLOW.read_text())["spec"]
    assert {i["name"]: i["default"] for i in spec["inputs"]} == {"samples": 20000, "max-mae": 1.0}
    train = next(s for s in spec["steps"] if s["name"] == "train")
    assert train["with"]["epochs"] == 20
    deploy = next(s for s in spec["steps"] if s["name"] == "deploy")
    assert deploy["with"]["target"] == "kserve" and deploy["with"]["runtime"] == "sluice"
