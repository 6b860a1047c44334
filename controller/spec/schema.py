"""The workflow JSON Schema: loading it once, and turning its errors into diagnostics.

Valid documents take the fast path (a fastjsonschema validator compiled once);
only an invalid one is walked again with `jsonschema` to report every error,
with messages written for people and never echoing a whole value.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

from controller.spec.diagnose import Collector
from controller.spec.errors import shorten
from controller.spec.suggest import did_you_mean

if TYPE_CHECKING:
    import jsonschema

GENERATED_VALIDATOR = "controller/spec/schema_validator.py"
_GENERATED_HEADER = (
    "# Generated from schema/workflow.schema.json by scripts/generate_schema_validator.py: do not edit.\n"
    "# fastjsonschema's validator as code, so that no process pays for compiling the schema.\n"
    "# ruff: noqa\n"
    "# type: ignore\n"
)

# Pod-level and privilege fields a workflow may not set, and why.
FORBIDDEN_FIELDS = {
    "securityContext": "steps always run restricted (non-root, no privilege escalation, all capabilities "
    "dropped); the compiler sets the security context",
    "podTemplate": "pod-level settings belong to the platform team (Helm values), not to a workflow",
    "hostNetwork": "a step may not use the node's network",
    "hostPath": "a step may not mount the node's filesystem",
    "hostPID": "a step may not see the node's processes",
    "privileged": "privileged containers can take over the node",
    "serviceAccountName": "runs use the run ServiceAccount the platform team configured; a workflow "
    "cannot choose its credentials",
    "volumes": "storage is the run's artifact store and codeset checkouts; a workflow cannot mount volumes",
}

_PATTERN_HINTS = {
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "a DNS-1123 label (lowercase letters, digits and '-', "
    "starting and ending with a letter or digit)",
    "^sluice/[a-z0-9-]+$": "a built-in stage such as sluice/train-keras",
    "^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$": "a duration such as 90s, 10m or 1h30m",
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name (letters, digits and '_')",
}


@cache
def workflow_schema() -> dict[str, Any]:
    text = resources.files("controller.spec").joinpath("schema/workflow.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def generated_validator_code() -> str:
    """The source of controller/spec/schema_validator.py, generated from the schema."""
    schema = dict(workflow_schema())
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"  # same keywords; fastjsonschema's dialect
    code = fastjsonschema.compile_to_code(schema)
    entry = re.search(r"^def (\w+)\(", code, re.MULTILINE)
    assert entry is not None, "fastjsonschema generated no validator function"
    # the root schema's function comes first; give it a stable name
    return _GENERATED_HEADER + code + f"\n\nvalidate = {entry.group(1)}\n"


@cache
def _fast_validator() -> Any:
    from controller.spec import schema_validator

    return schema_validator.validate  # type: ignore[attr-defined]


@cache
def _full_validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # only invalid documents need it: keep it out of start-up

    return jsonschema.Draft202012Validator(workflow_schema())


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe_type(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    article = {"integer": "an", "array": "an", "object": "an"}
    words = [f"{article.get(n, 'a')} {n}" for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _report(error: jsonschema.ValidationError, out: Collector) -> None:
    path = _json_path(error.absolute_path)
    kind, value, expected = error.validator, error.instance, error.validator_value
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        for key in value:
            if key in known or key in FORBIDDEN_FIELDS:
                continue
            suffix = did_you_mean(key, known) or f"; known fields: {', '.join(known)}"
            out.error(f"{path}.{key}", "schema.unknown-field", f"unknown field {shorten(key)}{suffix}")
        return
    if kind in ("if", "then", "else", "allOf", "$ref"):
        return
    if kind == "oneOf" and error.context:
        # report the branch that got furthest: the one whose errors are deepest
        best = max(error.context, key=lambda e: len(e.absolute_path))
        _report(best, out)
        return
    messages = {
        "required": lambda: f"missing required field {error.message.split()[0]}",
        "enum": lambda: "must be one of: " + ", ".join(str(v) for v in expected),
        "const": lambda: f"must be {expected!r}",
        "type": lambda: f"must be {_describe_type(expected)}, not {_describe_type(_type_name(value))}",
        "pattern": lambda: f"{shorten(value)} is not {_PATTERN_HINTS.get(expected, 'valid: ' + expected)}",
        "maxLength": lambda: f"is longer than {expected} characters",
        "minLength": lambda: f"is shorter than {expected} characters",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "minItems": lambda: f"needs at least {expected} item(s)",
        "maxItems": lambda: f"has more than {expected} items",
        "maxProperties": lambda: f"has more than {expected} entries",
        "propertyNames": lambda: "has an invalid key",
    }
    message = messages.get(kind, lambda: f"is invalid ({kind})")()
    if kind == "propertyNames" and error.context:
        for sub in error.context:
            out.error(f"{path}.{sub.instance}", "schema.key", f"{shorten(sub.instance)} is not a valid key")
        return
    out.error(path, f"schema.{kind}", message)


def check_forbidden(doc: Any, out: Collector, path: str = "$") -> None:
    """Refuse pod-level and privilege fields anywhere outside stage parameters, saying why."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            child = f"{path}.{key}"
            if key in FORBIDDEN_FIELDS:
                out.error(child, "spec.forbidden-field", f"{key!r} is not allowed: {FORBIDDEN_FIELDS[key]}")
            elif key not in ("with", "metadata", "status"):
                check_forbidden(value, out, child)
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            check_forbidden(item, out, f"{path}[{index}]")


def schema_valid(doc: Any) -> bool:
    """The fast path: a compiled validator that only says yes or no."""
    try:
        _fast_validator()(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def check_schema(doc: Any, out: Collector) -> None:
    """Every schema error of an invalid document, as diagnostics."""
    for error in _full_validator().iter_errors(doc):
        _report(error, out)
