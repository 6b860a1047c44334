"""`seldon` (Seldon Core 2 `Model`) and `seldon-v1` (Seldon Core 1 `SeldonDeployment`).

- `seldon`: mlops.seldon.io/v1alpha1 `Model`, requirement tensorflow (a Triton server),
  storageUri = the model folder inside the repository (`triton/<TRITON_MODEL_NAME>`); served
  under the `Model`'s own name (its agent renames the Triton model) behind `seldon-mesh`.
- `seldon-v1`: machinelearning.seldon.io/v1 `SeldonDeployment`, TRITON_SERVER with protocol v2,
  modelUri = the repository; the graph is named after the Triton model, because Seldon puts the
  graph name in the path it calls Triton with.
"""

from __future__ import annotations

from typing import Any

from controller.serving.target import (
    Manifest,
    ManifestRequest,
    Readiness,
    ServingTarget,
    Status,
    condition_readiness,
    container_security_context,
    pod_security_context,
    status_url,
    triton_model_name,
)
from controller.serving.triton import TRITON_MODEL_DIR, TRITON_MODEL_NAME

# ---- Seldon Core 2 ----


def _model_spec(request: ManifestRequest) -> dict[str, Any]:
    requirements = ["tensorflow"]
    if request.storage.requirement:  # the Server that mounts the model claim
        requirements.append(request.storage.requirement)
    spec: dict[str, Any] = {"storageUri": request.model_uri, "requirements": requirements}
    if request.storage.secret:  # the rclone storage secret of the storageUri's remote
        spec["secretName"] = request.storage.secret
    if request.min_replicas is not None:
        spec["replicas"] = max(request.min_replicas, 1)
        spec["minReplicas"] = request.min_replicas
    if request.max_replicas is not None:
        spec["maxReplicas"] = request.max_replicas
    spec["memory"] = request.compute["limits"]["memory"]  # Core 2 schedules models onto servers by memory
    return spec


def _model_served_name(name: str) -> str:
    return name


def _model_url(manifest: Manifest, status: Status, name: str, namespace: str) -> str:
    # Behind the seldon-mesh service, routed by the Seldon-Model header (`_model_headers`).
    return f"http://seldon-mesh.{namespace}/v2/models/{_model_served_name(name)}/infer"


def _model_headers(name: str) -> dict[str, str]:
    return {"Seldon-Model": _model_served_name(name)}


SELDON = ServingTarget(
    name="seldon",
    description="Seldon Core 2 Model",
    api_version="mlops.seldon.io/v1alpha1",
    kind="Model",
    build=_model_spec,
    url=_model_url,
    storage_path=TRITON_MODEL_DIR,
    served_name=_model_served_name,
    headers=_model_headers,
)

# ---- Seldon Core 1 ----


def _deployment_spec(request: ManifestRequest) -> dict[str, Any]:
    # The container that carries resources is matched to the graph node by name.
    container = {
        "name": TRITON_MODEL_NAME,
        "resources": request.compute,
        "securityContext": container_security_context(),
    }
    component: dict[str, Any] = {
        "spec": {"securityContext": pod_security_context(), "containers": [container]}
    }
    if request.max_replicas is not None:
        component["hpaSpec"] = {
            "minReplicas": max(request.min_replicas or 1, 1),
            "maxReplicas": request.max_replicas,
            "metrics": [
                # Seldon Core 1 embeds autoscaling/v2beta1's metric spelling
                {"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 80}}
            ],
        }
    predictor: dict[str, Any] = {
        "name": "default",
        "replicas": 1 if request.min_replicas is None else request.min_replicas,
        "graph": {
            # Seldon calls Triton at /v2/models/<graph name>/infer: the name of the Triton model.
            "name": TRITON_MODEL_NAME,
            "type": "MODEL",
            "implementation": "TRITON_SERVER",
            "modelUri": request.model_uri,
        },
        "componentSpecs": [component],
        "traffic": 100,
    }
    return {"protocol": "v2", "predictors": [predictor]}


def _deployment_readiness(status: Status) -> Readiness:
    state = status.get("state")
    if not state:
        return condition_readiness(status)
    description = f"state={state}" + (f": {status.get('description')}" if status.get("description") else "")
    return Readiness(state == "Available", description, failed=state == "Failed")


def _deployment_url(manifest: Manifest, status: Status, name: str, namespace: str) -> str:
    # Seldon Core 1 writes the full prediction URL (…/v2/models/<graph name>/infer) to
    # status.address.url; until it has, build the same from the predictor service and the graph.
    written = status_url(status)
    if written:
        return written
    predictor = ((manifest.get("spec") or {}).get("predictors") or [{}])[0]
    graph = (predictor.get("graph") or {}).get("name") or triton_model_name(name)
    service = f"{name}-{predictor.get('name') or 'default'}.{namespace}.svc.cluster.local:8000"
    return f"http://{service}/v2/models/{graph}/infer"


SELDON_V1 = ServingTarget(
    name="seldon-v1",
    description="Seldon Core 1 SeldonDeployment",
    api_version="machinelearning.seldon.io/v1",
    kind="SeldonDeployment",
    build=_deployment_spec,
    url=_deployment_url,
    readiness=_deployment_readiness,
)
