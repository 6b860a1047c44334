"""CustomResourceDefinitions of Workflow, Codeset and WorkflowRun (sluice.dev/v1alpha1).

The Workflow spec schema is generated from the same JSON Schema the loader validates with
(`controller/spec/schema/workflow.schema.json`), turned into a *structural* OpenAPI v3 schema:
`$ref`s inlined, `const` as a one-value `enum`, unions and free-form values (`with`, input
defaults, `env` values) as `x-kubernetes-preserve-unknown-fields`, and the keywords structural
schemas forbid (`additionalProperties: false`, `oneOf`, `if`, `propertyNames`, ...) dropped — the
loader still checks those when the operator reconciles. Codeset and WorkflowRun schemas are
written here from DESIGN.md's resource fields.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml

from controller.operator.settings import GROUP, VERSION

# Keywords a structural schema may carry as they are (JSON Schema and OpenAPI agree on them).
_KEPT = (
    "description",
    "enum",
    "pattern",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "default",
)
_FORMATS = {"date-time", "date", "int32", "int64", "uri", "email", "byte", "duration"}
MAX_REF_DEPTH = 32

# A Go-style duration of at least one second: a non-zero h, m or s component, no sub-second units.
INTERVAL_PATTERN = (
    r"^((([0-9]+h)?([0-9]+m)?0*[1-9][0-9]*s)|(([0-9]+h)?0*[1-9][0-9]*m([0-9]+s)?)"
    r"|(0*[1-9][0-9]*h([0-9]+m)?([0-9]+s)?))$"
)
# Git URLs Sluice accepts: http(s), ssh, git, file (refused at run time without SLUICE_ALLOW_LOCAL_GIT),
# or scp-like `user@host:path`.
URL_PATTERN = r"^((https?|ssh|git|file)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$"
REF_NAME_PATTERN = r"^[^\s~^:?*\[\\]+$"
# full SHA-1 or SHA-256 object names: a short SHA cannot be fetched by commit
COMMIT_PATTERN = r"^([0-9a-f]{40}|[0-9a-f]{64})$"
# A relative path inside a repository: no leading '/', no '..' segments.
PATH_PATTERN = r"^(\.|(\./)?\.?[A-Za-z0-9_-][A-Za-z0-9._-]*(/\.?[A-Za-z0-9_-][A-Za-z0-9._-]*)*)/?$"
DNS_SUBDOMAIN = {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}


def workflow_json_schema() -> dict[str, Any]:
    text = resources.files("controller.spec").joinpath("schema/workflow.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def structural(node: Any, defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A JSON Schema (2020-12) node -> a structural OpenAPI v3 schema node."""
    if depth > MAX_REF_DEPTH:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if not isinstance(node, dict):
        return {"x-kubernetes-preserve-unknown-fields": True}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs, depth + 1)

    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]

    types = node.get("type")
    if types is None and "enum" in out and out["enum"]:
        kinds = {type(v) for v in out["enum"]}
        types = "string" if kinds == {str} else None
    if isinstance(types, list):
        non_null = [t for t in types if t != "null"]
        if "null" in types:
            out["nullable"] = True
        if sorted(non_null) == ["integer", "string"]:
            out["x-kubernetes-int-or-string"] = True
            return out
        types = non_null[0] if len(non_null) == 1 else None
    if types is None:
        # A union or an untyped value: the loader validates it; the API keeps it as given.
        for kept in ("enum", "pattern", "maxLength", "minLength", "maximum", "minimum", "format"):
            out.pop(kept, None)
        out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    out = {"type": types, **out}
    if types == "object":
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            out["properties"] = {name: structural(sub, defs, depth + 1) for name, sub in properties.items()}
            required = [r for r in node.get("required", []) if r in properties]
            if required:
                out["required"] = required
        elif isinstance(extra, dict):
            out["additionalProperties"] = structural(extra, defs, depth + 1)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif types == "array":
        out["items"] = structural(node.get("items", {}), defs, depth + 1)
    return out


def _conditions() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "kstatus conditions: Ready, Reconciling, Stalled.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string", "maxLength": 316},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string", "maxLength": 1024},
                "message": {"type": "string", "maxLength": 32768},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            },
        },
    }


def _time(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "description": description}


def _secret_ref(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["name"],
        "properties": {"name": {**DNS_SUBDOMAIN, "description": "Name of a Secret in the same namespace."}},
    }


def workflow_schema() -> dict[str, Any]:
    source = workflow_json_schema()
    defs = source.get("$defs", {})
    spec = structural({"$ref": "#/$defs/workflowSpec"}, defs)
    status = {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": _conditions(),
            "lastRun": {
                "type": "object",
                "description": "The newest WorkflowRun of this workflow.",
                "properties": {
                    "name": {"type": "string"},
                    "phase": {"type": "string"},
                    "startTime": _time("When its PipelineRun started."),
                    "completionTime": _time("When it finished."),
                },
            },
            "endpoints": {
                "type": "array",
                "description": "Prediction URLs of the models the latest successful run deployed.",
                "items": {
                    "type": "object",
                    "required": ["name", "url"],
                    "properties": {
                        "name": {"type": "string", "description": "The workflow output holding the URL."},
                        "url": {"type": "string", "maxLength": 2048},
                        "run": {"type": "string", "description": "The WorkflowRun that deployed it."},
                    },
                },
            },
        },
    }
    return _object_schema(spec, status, required_spec=True)


def workflowrun_schema() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["workflowRef"],
        "properties": {
            "workflowRef": {
                "type": "object",
                "required": ["name"],
                "description": "The Workflow to run, in the same namespace.",
                "properties": {"name": {**DNS_SUBDOMAIN, "description": "Name of the Workflow."}},
            },
            "inputs": {
                "type": "object",
                "description": "Input values by name; inputs left out take the Workflow's defaults.",
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "codesetRevisions": {
                "type": "object",
                "description": "The commit to check out per codeset input (default: the Codeset's revision).",
                "additionalProperties": {"type": "string", "pattern": COMMIT_PATTERN},
            },
        },
    }
    step = {
        "type": "object",
        "required": ["name", "phase"],
        "properties": {
            "name": {"type": "string"},
            "phase": {
                "type": "string",
                "enum": ["Pending", "Running", "Succeeded", "Failed", "Cancelled", "Skipped"],
            },
            "startTime": _time("When the step's TaskRun started."),
            "completionTime": _time("When it finished."),
            "message": {"type": "string", "maxLength": 1024},
        },
    }
    status = {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed", "Cancelled"]},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": _conditions(),
            "startTime": _time("When the PipelineRun started."),
            "completionTime": _time("When it finished."),
            "pipelineRunRef": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "description": "The Tekton PipelineRun this run created (owned by it).",
            },
            "steps": {"type": "array", "items": step},
            "outputs": {
                "type": "object",
                "description": "Workflow outputs (metrics, model URI, prediction URL) by name.",
                "additionalProperties": {"type": "string"},
            },
        },
    }
    return _object_schema(spec, status, required_spec=True)


def codeset_schema() -> dict[str, Any]:
    ref_name = {"type": "string", "maxLength": 255, "pattern": REF_NAME_PATTERN}
    spec = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "maxLength": 2048,
                "pattern": URL_PATTERN,
                "description": "Git repository URL (https, ssh, git, or user@host:path).",
            },
            "ref": {
                "type": "object",
                "maxProperties": 1,
                "description": "What to track: one of branch, tag or commit (default: the remote's HEAD).",
                "properties": {
                    "branch": {**ref_name, "description": "A branch name."},
                    "tag": {**ref_name, "description": "A tag name."},
                    "commit": {
                        "type": "string",
                        "pattern": COMMIT_PATTERN,
                        "description": "A full commit SHA.",
                    },
                },
            },
            "interval": {
                "type": "string",
                "maxLength": 32,
                "pattern": INTERVAL_PATTERN,
                "default": "1m",
                "description": "How often to poll with `git ls-remote`, e.g. 30s, 5m, 1h (at least 1s).",
            },
            "secretRef": _secret_ref(
                "Git credentials: keys username+password, or token, or identity+known_hosts."
            ),
            "webhook": {
                "type": "object",
                "description": "Signed push webhooks (GitHub, GitLab, Gitea) that trigger a fetch at once.",
                "properties": {"secretRef": _secret_ref("The webhook secret (key token).")},
            },
            "sync": {
                "type": "object",
                "description": "Apply the workflow YAMLs found in this folder of the repository.",
                "required": ["path"],
                "properties": {
                    "path": {
                        "type": "string",
                        "maxLength": 1024,
                        "pattern": PATH_PATTERN,
                        "description": "A relative folder path inside the repository.",
                    }
                },
            },
            "ignore": {
                "type": "array",
                "maxItems": 100,
                "description": "gitignore-style path patterns excluded from sync and change detection: "
                "commits touching only these start no runs.",
                "items": {"type": "string", "maxLength": 1024},
            },
        },
    }
    status = {
        "type": "object",
        "properties": {
            "revision": {"type": "string", "description": "The latest fetched commit SHA."},
            "lastFetchedAt": _time("When the remote was last checked."),
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": _conditions(),
            "webhookPath": {
                "type": "string",
                "description": "Where the operator receives this Codeset's webhooks.",
            },
            "contentDigest": {
                "type": "string",
                "description": "Digest of the tracked content (after ignore).",
            },
            "lastHandledReconcileAt": {
                "type": "string",
                "description": "The last sluice.dev/reconcile-requested-at value acted on.",
            },
            "syncedWorkflows": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Workflows applied from sync.path at this revision.",
            },
        },
    }
    return _object_schema(spec, status, required_spec=True)


def _object_schema(spec: dict[str, Any], status: dict[str, Any], *, required_spec: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if required_spec:
        schema["required"] = ["spec"]
    return schema


_READY = '.status.conditions[?(@.type=="Ready")].status'
_MESSAGE = '.status.conditions[?(@.type=="Ready")].message'
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    kind: str, plural: str, short: list[str], schema: dict[str, Any], columns: list[dict[str, Any]]
) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "sluice"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["sluice"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name in `crds/` -> CRD object, in a stable order."""
    ready = {"name": "Ready", "type": "string", "jsonPath": _READY}
    message = {"name": "Message", "type": "string", "jsonPath": _MESSAGE, "priority": 1}
    return {
        "codesets.yaml": _crd(
            "Codeset",
            "codesets",
            ["cs"],
            codeset_schema(),
            [
                {"name": "URL", "type": "string", "jsonPath": ".spec.url"},
                {"name": "Revision", "type": "string", "jsonPath": ".status.revision"},
                ready,
                _AGE,
                message,
            ],
        ),
        "workflowruns.yaml": _crd(
            "WorkflowRun",
            "workflowruns",
            ["wfr"],
            workflowrun_schema(),
            [
                {"name": "Workflow", "type": "string", "jsonPath": ".spec.workflowRef.name"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Revision", "type": "string", "jsonPath": ".metadata.labels.sluice\\.dev/revision"},
                _AGE,
                message,
            ],
        ),
        "workflows.yaml": _crd(
            "Workflow",
            "workflows",
            ["wf"],
            workflow_schema(),
            [
                ready,
                {"name": "Last Run", "type": "string", "jsonPath": ".status.lastRun.name"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.lastRun.phase"},
                _AGE,
                message,
            ],
        ),
    }


def render(crd: dict[str, Any]) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=110, default_flow_style=False)


def render_all() -> str:
    """What `sluice crds` prints: every CRD, `---` separated, in file-name order."""
    return "".join(f"---\n{render(crd)}" for _, crd in sorted(all_crds().items()))
