"""`kserve`: a KServe `InferenceService` (serving.kserve.io/v1beta1) over the Triton repository.

modelFormat tensorflow with `protocolVersion: v2`, which KServe serves with its Triton runtime
(its TF Serving runtime speaks v1 only); storageUri = the repository; resources, min/max
replicas and an optional canary. Triton serves `/v2/models/<TRITON_MODEL_NAME>/infer`.

Runtime `sluice`: a custom predictor container instead (`kserve-container`, the stages image
running `python -m stages.serve` on 0.0.0.0:8080, the port KServe's Service targets by default),
serving the whole model directory under the same name `model`. The model comes through the
container's `STORAGE_URI` variable, which KServe's storage initializer webhook reads for custom
containers: a `pvc://` model is mounted read-only at /mnt/models, any other URI is downloaded
there. `PROTOCOL: v2` tells KServe the container speaks the Open Inference Protocol v2.
"""

from __future__ import annotations

from typing import Any

from controller.serving.target import (
    SLUICE_RUNTIME,
    STAGES_UID,
    TRITON_RUNTIME,
    Manifest,
    ManifestRequest,
    ServingTarget,
    Status,
    address_origin,
    container_security_context,
    pod_security_context,
    triton_model_name,
)


def _spec(request: ManifestRequest) -> dict[str, Any]:
    predictor: dict[str, Any] = {}
    if request.storage.service_account:  # KServe's storage initializer takes its credentials from it
        predictor["serviceAccountName"] = request.storage.service_account
    if request.min_replicas is not None:
        predictor["minReplicas"] = request.min_replicas
    if request.max_replicas is not None:
        predictor["maxReplicas"] = request.max_replicas
    if request.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = request.canary_traffic_percent
    if request.runtime == SLUICE_RUNTIME:
        predictor["containers"] = [_sluice_container(request)]
        predictor["securityContext"] = pod_security_context(STAGES_UID)
        return {"predictor": predictor}
    predictor["model"] = {
        "modelFormat": {"name": "tensorflow"},
        # v2 selects KServe's Triton runtime (TF Serving speaks v1 only); Triton loads the
        # repository at storageUri and serves /v2/models/<TRITON_MODEL_NAME>/infer.
        "protocolVersion": "v2",
        "storageUri": request.model_uri,
        "resources": request.compute,
        # Pod Security `restricted` (the model server container; KServe's injected storage
        # initializer is configured by the platform: docs/install.md)
        "securityContext": container_security_context(),
    }
    predictor["securityContext"] = pod_security_context()
    return {"predictor": predictor}


# Where KServe puts the model for a custom container, and the port its Service targets.
MODEL_MOUNT = "/mnt/models"
CONTAINER_PORT = 8080


def _sluice_container(request: ManifestRequest) -> dict[str, Any]:
    """Sluice's model server (stages/serve.py) as KServe's custom predictor container."""
    served = triton_model_name(request.name)  # the same name as Triton's: one URL for both runtimes
    return {
        "name": "kserve-container",
        "image": request.runtime_image,
        "command": ["python", "-m", "stages.serve"],
        "args": [
            *("--model-dir", MODEL_MOUNT, "--name", served),
            *("--host", "0.0.0.0", "--port", str(CONTAINER_PORT)),
        ],
        "env": [
            {"name": "STORAGE_URI", "value": request.model_uri},
            {"name": "PROTOCOL", "value": "v2"},
        ],
        # `http1`: a port name Knative accepts too (Serverless mode).
        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        # Ready once the model answers: it is loaded and compiled before the server listens.
        "readinessProbe": {
            "httpGet": {"path": f"/v2/models/{served}/ready", "port": CONTAINER_PORT},
            "periodSeconds": 5,
        },
        "resources": request.compute,
        "securityContext": container_security_context(STAGES_UID),
    }


def _url(manifest: Manifest, status: Status, name: str, namespace: str) -> str:
    predictor = (manifest.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    # The in-cluster address KServe reports (RawDeployment: the predictor's Service), never
    # status.url, whose host is `<name>-<namespace>.<ingress domain>` and resolves nowhere by default.
    base = address_origin(status) or f"http://{name}-predictor.{namespace}.svc.cluster.local"
    # Triton: the model's folder in the repository; Sluice's server: the same name
    if model.get("protocolVersion") == "v2" or predictor.get("containers"):
        return f"{base}/v2/models/{triton_model_name(name)}/infer"
    return f"{base}/v1/models/{name}:predict"  # TF Serving names the model after the service


KSERVE = ServingTarget(
    name="kserve",
    description="KServe InferenceService",
    api_version="serving.kserve.io/v1beta1",
    kind="InferenceService",
    build=_spec,
    url=_url,
    canary=True,
    runtimes=(TRITON_RUNTIME, SLUICE_RUNTIME),
)
