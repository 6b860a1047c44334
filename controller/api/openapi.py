"""OpenAPI v3 building blocks of the CRD schemas, and JSON Schema -> structural schema.

The Workflow spec schema comes from the loader's JSON Schema (2020-12), turned into a *structural*
OpenAPI v3 schema: `$ref`s inlined, `const` as a one-value `enum`, unions and free-form values
(`with`, input defaults, `env` values) as `x-kubernetes-preserve-unknown-fields`, and the keywords
structural schemas forbid (`additionalProperties: false`, `oneOf`, `if`, `propertyNames`, ...)
dropped — the loader still checks those when the operator reconciles.
"""

from __future__ import annotations

from typing import Any

from controller.api.conditions import CONDITION_STATUSES, CONDITION_TYPES

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

# Kubernetes object names (RFC 1123 subdomain), as the API server checks them.
MAX_NAME_LENGTH = 253
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DNS_SUBDOMAIN = {"type": "string", "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN}


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


def conditions_schema() -> dict[str, Any]:
    return {
        "type": "array",
        "description": f"kstatus conditions: {', '.join(CONDITION_TYPES)}.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string", "maxLength": 316},
                "status": {"type": "string", "enum": list(CONDITION_STATUSES)},
                "reason": {"type": "string", "maxLength": 1024},
                "message": {"type": "string", "maxLength": 32768},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            },
        },
    }


def time_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "description": description}


def secret_ref_schema(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["name"],
        "properties": {"name": {**DNS_SUBDOMAIN, "description": "Name of a Secret in the same namespace."}},
    }


def object_schema(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """A whole resource: the usual envelope around a required `spec` and a `status`."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }
