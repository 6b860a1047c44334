"""`kserve`: a KServe `InferenceService` (serving.kserve.io/v1beta1) over the Triton repository.

modelFormat tensorflow with `protocolVersion: v2`, which KServe serves with its Triton runtime
(its TF Serving runtime speaks v1 only); storageUri = the repository; resources, min/max
replicas and an optional canary. Triton serves `/v2/models/<TRITON_MODEL_NAME>/infer`.
"""

from __future__ import annotations

from typing import Any

from controller.serving.target import (
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


def _url(manifest: Manifest, status: Status, name: str, namespace: str) -> str:
    model = ((manifest.get("spec") or {}).get("predictor") or {}).get("model") or {}
    # The in-cluster address KServe reports (RawDeployment: the predictor's Service), never
    # status.url, whose host is `<name>-<namespace>.<ingress domain>` and resolves nowhere by default.
    base = address_origin(status) or f"http://{name}-predictor.{namespace}.svc.cluster.local"
    if model.get("protocolVersion") == "v2":  # Triton: the model's folder in the repository
        return f"{base}/v2/models/{triton_model_name(name)}/infer"
    return f"{base}/v1/models/{name}:predict"  # TF Serving names the model after the service


KSERVE = ServingTarget(
    name="kserve",
    description="KServe InferenceService",
    api_version="serving.kserve.io/v1beta1",
    kind="InferenceService",
    plural="inferenceservices",
    build=_spec,
    url=_url,
    canary=True,
)
