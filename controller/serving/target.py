"""`ServingTarget`: everything Sluice knows about one serving platform, in one object.

A target declares the resource it creates (`api_version`, `kind`, `plural`), where under a
`sluice.model/v1` directory its runtime reads the model (`storage_path`), and four hooks:
`build` (the resource's `spec`), `served_name` (the model name in its v2 URL), `readiness`
(Ready or not, from the resource's status) and `url` (the prediction URL once Ready).
`ServingTarget.manifest` checks the arguments every platform shares and wraps `build`'s spec
with the metadata Sluice puts on everything. Pure: the same arguments give the same manifest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Required, TypedDict, Unpack
from urllib.parse import urlsplit

from controller import settings
from controller.resources import (
    compute_resources,
    restricted_pod_security_context,
    restricted_security_context,
)
from controller.serving.triton import TRITON_MODEL_NAME, TRITON_REPOSITORY

# The user id serving containers run as: KServe's and Seldon's Triton images (nvcr.io's
# tritonserver) carry the user `triton-server` with this uid, and KServe's storage initializer
# image runs as it too. Pod Security `restricted` needs a non-root uid the image supports.
SERVING_UID = 1000

# Model servers a target can run (`runtime`): every target's own (`triton`, the default), and
# Sluice's own (`stages.serve`, the KServe Python model server in the stages image), which serves
# the whole sluice.model/v1 directory rather than its Triton repository and fits a laptop cluster.
TRITON_RUNTIME = "triton"
SLUICE_RUNTIME = "sluice"
RUNTIMES = (TRITON_RUNTIME, SLUICE_RUNTIME)
# The user of the stages image (stages/Dockerfile), which runtime `sluice` runs as.
STAGES_UID = 65532

LABEL_MODEL = f"{settings.API_GROUP}/model"
SERVING_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
SERVING_LIMITS = {"cpu": "1", "memory": "1Gi"}
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class ServingError(ValueError):
    """Arguments no serving platform would accept."""


@dataclass(frozen=True)
class StorageAccess:
    """How the serving runtime reaches the model store (`controller.serving.store`): names only,
    never credentials. Empty: the runtime needs nothing (a public URI, or `pvc://`)."""

    service_account: str | None = None  # kserve: the predictor's ServiceAccount (its S3 Secret)
    secret: str | None = None  # seldon: the rclone storage secret (Model.spec.secretName)
    requirement: str | None = None  # seldon: the capability of the Server that mounts the claim


class ManifestArguments(TypedDict, total=False):
    """The keyword arguments of a serving manifest (`ServingTarget.manifest`, `serving_manifest`)."""

    name: Required[str]
    model_uri: Required[str]
    namespace: str | None
    min_replicas: int | None
    max_replicas: int | None
    canary_traffic_percent: int | None
    resources: Mapping[str, Mapping[str, str]] | None
    labels: Mapping[str, str] | None  # e.g. sluice.dev/workflow and sluice.dev/run of the deploying run
    storage: StorageAccess | None
    runtime: str | None  # RUNTIMES; None: the target's own (triton)
    runtime_image: str | None  # the stages image, for runtime `sluice`


@dataclass(frozen=True)
class ManifestRequest:
    """Checked arguments of a serving manifest; `compute` is the completed requests/limits."""

    name: str
    model_uri: str
    min_replicas: int | None
    max_replicas: int | None
    canary_traffic_percent: int | None
    compute: dict[str, dict[str, str]]
    storage: StorageAccess = StorageAccess()
    runtime: str = TRITON_RUNTIME
    runtime_image: str | None = None


class Readiness(NamedTuple):
    """A serving resource's state: Ready, failed for good (stop waiting), and in words."""

    ready: bool
    description: str
    failed: bool = False


Manifest = Mapping[str, Any]
Status = Mapping[str, Any]


def condition_readiness(status: Status) -> Readiness:
    """Ready from the `Ready` (or Seldon Core 2's `ModelReady`) condition, with its reason."""
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready = conditions.get("Ready") or conditions.get("ModelReady")
    if ready is None:
        return Readiness(False, "no Ready condition yet")
    description = f"Ready={ready.get('status')}"
    if ready.get("reason"):
        description += f" reason={ready['reason']}"
    if ready.get("message"):
        description += f": {ready['message']}"
    return Readiness(ready.get("status") == "True", description)


def triton_model_name(name: str) -> str:
    """The served name of a target whose runtime loads the whole repository: Triton keeps the
    repository's folder name, whatever the resource is called."""
    return TRITON_MODEL_NAME


@dataclass(frozen=True)
class ServingTarget:
    name: str  # --target NAME
    description: str  # what it creates, for help texts and docs
    api_version: str
    kind: str
    build: Callable[[ManifestRequest], dict[str, Any]]  # -> the resource's spec
    url: Callable[[Manifest, Status, str, str], str]  # (manifest, status, name, namespace) -> URL
    storage_path: str = TRITON_REPOSITORY  # where under a model directory the runtime reads the model
    served_name: Callable[[str], str] = triton_model_name  # resource name -> model name in the v2 URL
    readiness: Callable[[Status], Readiness] = condition_readiness
    headers: Callable[[str], dict[str, str]] = lambda name: {}  # resource name -> request headers
    canary: bool = False  # takes canary_traffic_percent
    runtimes: tuple[str, ...] = (TRITON_RUNTIME,)  # the model servers it can run (RUNTIMES)
    # The resource's plural, for the Kubernetes API path; by default the kind in lower case with an
    # "s", as the CRDs of KServe and Seldon name theirs.
    plural: str = ""

    def __post_init__(self) -> None:
        if not self.plural:
            object.__setattr__(self, "plural", f"{self.kind.lower()}s")

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def served_model_name(self, name: str) -> str:
        """The model name in the v2 URL of the resource called `name`."""
        return self.served_name(name)

    def model_path(self, runtime: str | None = None) -> str:
        """Where under a model directory `runtime` reads the model: `storage_path` for the
        target's own runtime, the directory itself ("") for Sluice's."""
        return "" if runtime == SLUICE_RUNTIME else self.storage_path

    def request_headers(self, name: str) -> dict[str, str]:
        """Headers a prediction request to the resource called `name` must carry (Seldon Core 2
        routes by `Seldon-Model`); {} when the URL alone reaches the model."""
        return self.headers(name)

    def manifest(self, **arguments: Unpack[ManifestArguments]) -> dict[str, Any]:
        """The serving resource for the model at `model_uri` (see `storage_path`); ServingError on
        bad arguments."""
        _check(self, arguments)
        request = ManifestRequest(
            arguments["name"],
            arguments["model_uri"],
            arguments.get("min_replicas"),
            arguments.get("max_replicas"),
            arguments.get("canary_traffic_percent"),
            _resources(arguments.get("resources")),
            arguments.get("storage") or StorageAccess(),
            arguments.get("runtime") or TRITON_RUNTIME,
            arguments.get("runtime_image"),
        )
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": _metadata(request.name, arguments.get("namespace"), arguments.get("labels")),
            "spec": self.build(request),
        }


def _check(target: ServingTarget, arguments: ManifestArguments) -> None:
    unknown = set(arguments) - ManifestArguments.__required_keys__ - ManifestArguments.__optional_keys__
    if unknown:  # what a keyword-only signature would refuse
        raise TypeError(f"unexpected serving manifest arguments: {', '.join(sorted(unknown))}")
    name, model_uri = arguments["name"], arguments["model_uri"]
    min_replicas, max_replicas = arguments.get("min_replicas"), arguments.get("max_replicas")
    canary_traffic_percent = arguments.get("canary_traffic_percent")
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
        if not target.canary:
            from controller.serving.registry import TARGETS

            takers = " and ".join(t.name for t in TARGETS.values() if t.canary)
            raise ServingError(f"canary_traffic_percent is only supported by the {takers} target")
        if isinstance(canary_traffic_percent, bool) or not 0 <= canary_traffic_percent <= 100:
            raise ServingError("canary_traffic_percent must be between 0 and 100")
    runtime, image = arguments.get("runtime") or TRITON_RUNTIME, arguments.get("runtime_image")
    if runtime not in RUNTIMES:
        raise ServingError(f"unknown runtime {runtime!r}; use one of: {', '.join(RUNTIMES)}")
    if runtime not in target.runtimes:
        from controller.serving.registry import TARGETS

        takers = " and ".join(t.name for t in TARGETS.values() if runtime in t.runtimes)
        raise ServingError(f"runtime {runtime!r} is only supported by the {takers} target")
    if runtime == SLUICE_RUNTIME and (not image or any(c.isspace() for c in image)):
        raise ServingError(f"runtime {runtime!r} needs the stages image (runtime_image)")
    if runtime != SLUICE_RUNTIME and image is not None:
        raise ServingError(f"runtime_image is only used by runtime {SLUICE_RUNTIME!r}")


def _metadata(name: str, namespace: str | None, labels: Mapping[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    given = {key: label_value(value) for key, value in (labels or {}).items()}
    metadata["labels"] = {**given, "app.kubernetes.io/managed-by": "sluice", LABEL_MODEL: name}
    return metadata


def run_labels(workflow: str | None, run: str | None) -> dict[str, str]:
    """The labels Sluice puts on everything it creates, for the run deploying a model: the
    documented uninstall (`kubectl delete ... -l sluice.dev/workflow`) finds serving resources by them."""
    labels = {
        settings.LABEL_WORKFLOW: label_value(workflow or ""),
        settings.LABEL_RUN: label_value(run or ""),
    }
    return {key: value for key, value in labels.items() if value}


def label_value(text: str) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")


def pod_security_context(uid: int = SERVING_UID) -> dict[str, Any]:
    """A serving pod's securityContext under Pod Security `restricted`: non-root as `uid`
    (SERVING_UID, the Triton images' user, unless the runtime's image has another), RuntimeDefault
    seccomp. No fsGroup: the model files are world-readable, and an fsGroup would
    have the kubelet change the group of a model claim that task pods write as 65532."""
    return restricted_pod_security_context(uid)


def container_security_context(uid: int = SERVING_UID) -> dict[str, Any]:
    """A serving container's securityContext under Pod Security `restricted`, as user `uid`."""
    return restricted_security_context(uid=uid)


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


def status_url(status: Status) -> str:
    """The URL a controller wrote to `status.url` or `status.address.url`, without a trailing /."""
    return str(status.get("url") or (status.get("address") or {}).get("url") or "").rstrip("/")


def address_origin(status: Status) -> str:
    """`scheme://host[:port]` of the in-cluster address a controller reports (`status.address.url`),
    or "": the external `status.url` is often a name nothing resolves (KServe RawDeployment's
    `<name>-<namespace>.example.com`), and a path there is the controller's guess of a model."""
    url = urlsplit(str((status.get("address") or {}).get("url") or ""))
    return f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else ""
