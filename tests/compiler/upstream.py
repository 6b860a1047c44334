"""Strict validation of generated objects against the upstream schemas in tests/data/upstream.

Reusable by any test (compiler, operator, helm): `UpstreamSchemas().errors(obj)` returns a list of
messages, empty when the object is valid.

Strict means unknown fields are errors: every object schema that lists its `properties` and
neither sets `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` gets
`additionalProperties: false`. Tekton's CRDs leave an embedded `pipelineSpec` / `taskSpec`
open (`x-kubernetes-preserve-unknown-fields`), so those are checked separately against the
Pipeline and Task CRDs' `spec` schemas, and the whole pipelineSpec once more against
`v1.PipelineSpec` in Tekton's swagger-v1.json (which also covers an embedded task's
`metadata`; Kubernetes core types it references but does not define are left open there,
since the CRD check covers them).
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# Unmodified upstream copies kept in the repository, with their provenance and licences
# (tests/data/upstream/README.md).
_DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "data" / "upstream"
SCHEMAS_ROOT = Path(os.environ.get("SLUICE_UPSTREAM_SCHEMAS", str(_DEFAULT_ROOT)))
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CRD_FILES = {
    ("tekton.dev", "PipelineRun"): "tekton/300-pipelinerun.yaml",
    ("tekton.dev", "Pipeline"): "tekton/300-pipeline.yaml",
    ("tekton.dev", "Task"): "tekton/300-task.yaml",
    ("tekton.dev", "TaskRun"): "tekton/300-taskrun.yaml",
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("mlops.seldon.io", "Model"): "seldon/mlops.seldon.io_models.yaml",
    (
        "machinelearning.seldon.io",
        "SeldonDeployment",
    ): "seldon/machinelearning.seldon.io_seldondeployments.yaml",
}


def make_strict(schema: Any) -> Any:
    """A copy of a schema where objects with known properties reject unknown ones."""
    if isinstance(schema, list):
        return [make_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: make_strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _metadata_schema() -> dict[str, Any]:
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
            "generateName": {"type": "string"},
            "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
            "labels": string_map,
            "annotations": string_map,
            "ownerReferences": {"type": "array"},
        },
        "additionalProperties": False,
    }


def _label_errors(obj: dict[str, Any], where: str) -> Iterator[str]:
    """Kubernetes label syntax, which no CRD schema checks."""
    import re

    value_re = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
    name_re = re.compile(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
    )
    for key, value in (obj.get("labels") or {}).items():
        if not name_re.match(key) or len(key.split("/")[-1]) > 63:
            yield f"{where}.labels: invalid label key {key!r}"
        if not isinstance(value, str) or len(value) > 63 or not value_re.match(value):
            yield f"{where}.labels.{key}: invalid label value {value!r}"


class UpstreamSchemas:
    """Loads upstream CRDs lazily (the KServe CRD alone is 2 MB) and validates objects strictly."""

    def __init__(self, root: Path | str = SCHEMAS_ROOT):
        self.root = Path(root)

    @functools.cache  # noqa: B019 - one instance per test session
    def crd_schema(self, group: str, kind: str, version: str) -> dict[str, Any]:
        path = self.root / CRD_FILES[(group, kind)]
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        for entry in crd["spec"]["versions"]:
            if entry["name"] == version:
                schema = make_strict(entry["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = _metadata_schema()
                return schema
        raise KeyError(f"{kind} {group}/{version} is not in {path}")

    @functools.cache  # noqa: B019
    def validator(self, group: str, kind: str, version: str, part: str | None = None) -> Any:
        schema = self.crd_schema(group, kind, version)
        if part is not None:
            schema = schema["properties"][part]
        return jsonschema.Draft7Validator(schema)

    @functools.cache  # noqa: B019
    def swagger_validator(self, definition: str) -> Any:
        swagger = json.loads((self.root / "tekton" / "swagger-v1.json").read_text(encoding="utf-8"))
        definitions = make_strict(swagger["definitions"])
        # ParamValue is a Go type with custom JSON (a string, an array or an object).
        definitions["v1.ParamValue"] = {"type": ["string", "array", "object"]}
        text = json.dumps(definitions)
        for ref in set(_missing_refs(text, definitions)):
            definitions[ref] = {}  # Kubernetes core types: not defined here, checked by the CRDs
        schema = {"definitions": definitions, "$ref": f"#/definitions/{definition}"}
        return jsonschema.Draft7Validator(schema)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every schema violation in a generated object (a PipelineRun, InferenceService, ...)."""
        api_version = obj.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        kind = obj.get("kind", "")
        if (group, kind) not in CRD_FILES:
            return [f"no upstream schema for {api_version} {kind}"]
        found = [_format(e, "$") for e in self.validator(group, kind, version).iter_errors(obj)]
        found += list(_label_errors(obj.get("metadata") or {}, "$.metadata"))
        if (group, kind) == ("tekton.dev", "PipelineRun"):
            spec = (obj.get("spec") or {}).get("pipelineSpec")
            if spec is not None:
                found += self.pipeline_spec_errors(spec, version, "$.spec.pipelineSpec")
        if (group, kind) == ("tekton.dev", "Pipeline"):
            found += self.pipeline_spec_errors(obj.get("spec") or {}, version, "$.spec")
        return found

    def pipeline_spec_errors(self, spec: dict[str, Any], version: str, where: str) -> list[str]:
        found = [
            _format(e, where)
            for e in self.validator("tekton.dev", "Pipeline", version, "spec").iter_errors(spec)
        ]
        found += [_format(e, where) for e in self.swagger_validator("v1.PipelineSpec").iter_errors(spec)]
        for section in ("tasks", "finally"):
            for index, task in enumerate(spec.get(section) or []):
                task_spec = task.get("taskSpec")
                if task_spec is None:
                    continue
                here = f"{where}.{section}[{index}].taskSpec"
                body = {
                    k: v for k, v in task_spec.items() if k not in ("metadata", "apiVersion", "kind", "spec")
                }
                validator = self.validator("tekton.dev", "Task", version, "spec")
                found += [_format(e, here) for e in validator.iter_errors(body)]
                found += list(_label_errors(task_spec.get("metadata") or {}, f"{here}.metadata"))
        return found


def _missing_refs(text: str, definitions: dict[str, Any]) -> Iterator[str]:
    marker = '"$ref": "#/definitions/'
    start = text.find(marker)
    while start >= 0:
        end = text.find('"', start + len(marker))
        name = text[start + len(marker) : end]
        if name not in definitions:
            yield name
        start = text.find(marker, end)


def _format(error: Any, where: str) -> str:
    path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{path}: {error.message}"


@functools.lru_cache(maxsize=1)
def shared() -> UpstreamSchemas:
    """One cached instance for a test session."""
    return UpstreamSchemas()


def strict_copy(schema: dict[str, Any]) -> dict[str, Any]:
    return make_strict(copy.deepcopy(schema))
