"""What of a Tekton v1 PipelineRun the local executor honours: the fields it knows, by object kind.

Every field is either honoured, deliberately ignored because it only means something on a
cluster (images, resources, security contexts, service accounts), or refused with an error
naming its JSON path. Nothing is silently skipped. `check_fields` and `check_items` refuse an
unknown field; `pipelinerun_check.check_pipelinerun` walks a whole run with them.
"""

from __future__ import annotations

from typing import Any

from controller.units import parse_duration


class UnsupportedError(ValueError):
    """A PipelineRun uses a Tekton feature the local executor cannot honour."""


# The one mount path host processes honour: a volume there becomes the step's TMPDIR.
HOST_TMP = "/tmp"

# Ignored locally: they place or constrain pods, which do not exist here.
_CLUSTER_ONLY = {"image", "imagePullPolicy", "computeResources", "resources", "securityContext"}

FIELDS: dict[str, set[str]] = {
    "pipelinerun": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "generateName", "namespace", "labels", "annotations"},
    "spec": {"pipelineSpec", "params", "workspaces", "timeouts", "taskRunTemplate", "taskRunSpecs"},
    "taskRunTemplate": {"serviceAccountName", "podTemplate"},
    "taskRunSpec": {"pipelineTaskName", "serviceAccountName", "podTemplate", "timeout"},
    "timeouts": {"pipeline", "tasks", "finally"},
    "pipelineSpec": {"params", "workspaces", "tasks", "finally", "results", "description", "displayName"},
    "pipelineTask": {
        "name",
        "displayName",
        "description",
        "taskSpec",
        "params",
        "workspaces",
        "runAfter",
        "when",
        "retries",
        "timeout",
        "matrix",
        "onError",
    },
    "matrix": {"params", "include"},
    "matrixInclude": {"name", "params"},
    "when": {"input", "operator", "values"},
    "taskSpec": {
        "metadata",
        "params",
        "results",
        "workspaces",
        "steps",
        "stepTemplate",
        "sidecars",
        "volumes",
        "description",
        "displayName",
        "apiVersion",
        "kind",
    },
    "taskMetadata": {"labels", "annotations"},
    "step": {
        "name",
        "displayName",
        "command",
        "args",
        "script",
        "env",
        "envFrom",
        "workingDir",
        "timeout",
        "onError",
        "volumeMounts",
        "results",  # step results: checked by stepresults.py
    }
    | _CLUSTER_ONLY,
    "sidecar": {
        "name",
        "volumeMounts",
        "command",
        "args",
        "script",
        "env",
        "workingDir",
        "readinessProbe",
        "startupProbe",  # readiness is checked once it passed (sidecars.py)
        "ports",
    }
    | _CLUSTER_ONLY,
    "probe": {
        "exec",
        "tcpSocket",
        "httpGet",
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
    },
    "stepTemplate": {"env", "workingDir", "volumeMounts", "command", "args"} | _CLUSTER_ONLY,
    "volume": {"name", "emptyDir"},
    "emptyDir": {"medium", "sizeLimit"},
    "volumeMount": {"name", "mountPath", "readOnly", "subPath"},
    "env": {"name", "value", "valueFrom"},
    "valueFrom": {"secretKeyRef", "configMapKeyRef"},
    "secretKeyRef": {"name", "key", "optional"},
    "configMapKeyRef": {"name", "key", "optional"},
    "envFromSource": {"prefix", "configMapRef", "secretRef"},
    "configMapRef": {"name", "optional"},
    "secretRef": {"name", "optional"},
    "paramSpec": {"name", "type", "default", "description", "properties"},
    "param": {"name", "value"},
    "resultSpec": {"name", "type", "description", "properties", "value"},  # value: a step result
    "pipelineResult": {"name", "type", "description", "value"},
    "taskWorkspace": {"name", "description", "mountPath", "readOnly", "optional"},
    "pipelineWorkspace": {"name", "description", "optional"},
    "taskWorkspaceBinding": {"name", "workspace", "subPath"},
    "workspaceBinding": {
        "name",
        "subPath",
        "volumeClaimTemplate",
        "emptyDir",
        "secret",
        "configMap",
        "projected",
        "persistentVolumeClaim",
    },
    "secretVolume": {"secretName", "items", "defaultMode", "optional"},
    "configMapVolume": {"name", "items", "defaultMode", "optional"},
    "projectedVolume": {"sources", "defaultMode"},
    "projection": {"configMap", "secret"},
    "projectedSource": {"name", "items", "optional"},
    "keyToPath": {"key", "path", "mode"},
}


def check_fields(obj: Any, kind: str, path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise UnsupportedError(f"{path}: expected an object")
    for key in obj:
        if key not in FIELDS[kind]:
            raise UnsupportedError(f"{path}.{key}: Tekton field not supported by the local executor")
    return obj


def check_items(obj: Any, kind: str, path: str) -> list[dict[str, Any]]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise UnsupportedError(f"{path}: expected a list")
    return [check_fields(item, kind, f"{path}[{i}]") for i, item in enumerate(obj)]


def timeout_seconds(text: Any, where: str) -> float | None:
    """A Tekton timeout (a Go duration: `1h0m0s`, `90s`, `1.5h`) in seconds; None for zero (no timeout,
    as in Tekton, which also refuses a negative one)."""
    try:
        return parse_duration(text) or None
    except ValueError as exc:
        raise UnsupportedError(f"{where}: {exc}") from None
