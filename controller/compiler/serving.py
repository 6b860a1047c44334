"""Serving manifests: what `sluice deploy-manifest` prints and the deploy stage applies.

Every target serves the trained model over the Open Inference Protocol v2 from the Triton model
repository sluice/train-keras writes (`<model dir>/triton/`, holding one model named
`TRITON_MODEL_NAME`: `config.pbtxt` and `1/model.savedmodel/`):
- `kserve`: KServe `InferenceService` (serving.kserve.io/v1beta1), modelFormat tensorflow,
  `protocolVersion: v2` (which KServe serves with its Triton runtime), storageUri = the
  repository, resources, min/max replicas, optional canary.
- `seldon`: Seldon Core 2 `Model` (mlops.seldon.io/v1alpha1), requirement tensorflow (Triton),
  storageUri = the model folder inside the repository (`triton/<TRITON_MODEL_NAME>`).
- `seldon-v1`: Seldon Core 1 `SeldonDeployment` (machinelearning.seldon.io/v1), TRITON_SERVER
  with protocol v2, modelUri = the repository; the graph is named after the Triton model,
  because Seldon puts the graph name in the path it calls Triton with.
`storage_path` and `served_model_name` say where each target reads the model and which name its
v2 URL carries. Pure: the same arguments give the same manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from controller import settings
from controller.compiler.containers import compute_resources

Target = Literal["kserve", "seldon", "seldon-v1"]
TARGETS: tuple[str, ...] = ("kserve", "seldon", "seldon-v1")
LABEL_MODEL = f"{settings.API_GROUP}/model"
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SERVING_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
SERVING_LIMITS = {"cpu": "1", "memory": "1Gi"}
# The model inside the Triton repository of a model directory: sluice/train-keras writes
# triton/<TRITON_MODEL_NAME>/, and KServe and Seldon Core 1 URLs name it (/v2/models/model/infer).
TRITON_REPOSITORY = "triton"
TRITON_MODEL_NAME = "model"
TRITON_MODEL_DIR = f"{TRITON_REPOSITORY}/{TRITON_MODEL_NAME}"


def storage_path(target: str) -> str:
    """Where under a `sluice.model/v1` directory the target's runtime reads the model: the
    Triton repository for KServe and Seldon Core 1, the model folder in it for Seldon Core 2."""
    return TRITON_MODEL_DIR if target == "seldon" else TRITON_REPOSITORY


def served_model_name(target: str, name: str) -> str:
    """The model name in the target's v2 URL: Seldon Core 2 serves the `Model` under its own
    name (its agent renames the Triton model); Triton in KServe and Seldon Core 1 keeps the
    repository's folder name."""
    return name if target == "seldon" else TRITON_MODEL_NAME


class ServingError(ValueError):
    """Arguments no serving platform would accept."""


def _check(
    target: str,
    name: str,
    model_uri: str,
    min_replicas: int | None,
    max_replicas: int | None,
    canary_traffic_percent: int | None,
) -> None:
    if target not in TARGETS:
        raise ServingError(f"unknown target {target!r}; use one of: {', '.join(TARGETS)}")
    if not _NAME_RE.match(name) or len(name) > 45:
        # KServe builds host names and Knative service names from it: a short DNS-1035 label.
        raise ServingError(f"name {name!r} must be a DNS-1035 label of at most 45 characters")
    if not model_uri or any(c.isspace() for c in model_uri):
        raise ServingError("model URI must be a non-empty URI without spaces")
    for label, value in (("min_replicas", min_replicas), ("max_replicas", max_replicas)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ServingError(f"{label} must be an integer >= 0")
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        raise ServingError("max_replicas must be >= min_replicas")
    if max_replicas == 0:
        raise ServingError("max_replicas must be at least 1")
    if canary_traffic_percent is not None:
        if target != "kserve":
            raise ServingError("canary_traffic_percent is only supported by the kserve target")
        if isinstance(canary_traffic_percent, bool) or not 0 <= canary_traffic_percent <= 100:
            raise ServingError("canary_traffic_percent must be between 0 and 100")


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "sluice", LABEL_MODEL: name}
    return metadata


def _resources(resources: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    given = resources or {}
    unknown = set(given) - {"requests", "limits"}
    if unknown:
        raise ServingError(f"resources may only have requests and limits, not {', '.join(sorted(unknown))}")
    return compute_resources(
        dict(given.get("requests") or {}),
        dict(given.get("limits") or {}),
        default_requests=SERVING_REQUESTS,
        default_limits=SERVING_LIMITS,
    )


def serving_manifest(
    target: Target,
    *,
    name: str,
    model_uri: str,
    namespace: str | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    canary_traffic_percent: int | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The serving resource for the model at `model_uri` (a Triton model repository for kserve
    and seldon-v1, the model folder in it for seldon; see `storage_path`); ServingError on bad
    arguments."""
    _check(target, name, model_uri, min_replicas, max_replicas, canary_traffic_percent)
    compute = _resources(resources)
    if target == "kserve":
        return _kserve(
            name, model_uri, namespace, min_replicas, max_replicas, canary_traffic_percent, compute
        )
    if target == "seldon":
        return _seldon_v2(name, model_uri, namespace, min_replicas, max_replicas, compute)
    return _seldon_v1(name, model_uri, namespace, min_replicas, max_replicas, compute)


def _kserve(
    name: str,
    uri: str,
    namespace: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    canary: int | None,
    compute: dict[str, dict[str, str]],
) -> dict[str, Any]:
    predictor: dict[str, Any] = {}
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    predictor["model"] = {
        "modelFormat": {"name": "tensorflow"},
        # v2 selects KServe's Triton runtime (TF Serving speaks v1 only); Triton loads the
        # repository at storageUri and serves /v2/models/<TRITON_MODEL_NAME>/infer.
        "protocolVersion": "v2",
        "storageUri": uri,
        "resources": compute,
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": _metadata(name, namespace),
        "spec": {"predictor": predictor},
    }


def _seldon_v2(
    name: str,
    uri: str,
    namespace: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    compute: dict[str, dict[str, str]],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"storageUri": uri, "requirements": ["tensorflow"]}
    if min_replicas is not None:
        spec["replicas"] = max(min_replicas, 1)
        spec["minReplicas"] = min_replicas
    if max_replicas is not None:
        spec["maxReplicas"] = max_replicas
    spec["memory"] = compute["limits"]["memory"]  # Core 2 schedules models onto servers by memory
    return {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": _metadata(name, namespace),
        "spec": spec,
    }


def _seldon_v1(
    name: str,
    uri: str,
    namespace: str | None,
    min_replicas: int | None,
    max_replicas: int | None,
    compute: dict[str, dict[str, str]],
) -> dict[str, Any]:
    # The container that carries resources is matched to the graph node by name.
    container = {"name": TRITON_MODEL_NAME, "resources": compute}
    component: dict[str, Any] = {"spec": {"containers": [container]}}
    if max_replicas is not None:
        component["hpaSpec"] = {
            "minReplicas": max(min_replicas or 1, 1),
            "maxReplicas": max_replicas,
            "metrics": [
                # Seldon Core 1 embeds autoscaling/v2beta1's metric spelling
                {"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 80}}
            ],
        }
    predictor: dict[str, Any] = {
        "name": "default",
        "replicas": 1 if min_replicas is None else min_replicas,
        "graph": {
            # Seldon calls Triton at /v2/models/<graph name>/infer: the name of the Triton model.
            "name": TRITON_MODEL_NAME,
            "type": "MODEL",
            "implementation": "TRITON_SERVER",
            "modelUri": uri,
        },
        "componentSpecs": [component],
        "traffic": 100,
    }
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": _metadata(name, namespace),
        "spec": {"protocol": "v2", "predictors": [predictor]},
    }
