"""Tekton's three value types (string, array, object) for params and results.

A param value is checked against its declaration (`type`, object `properties`); a result is read
as Tekton's `ParamValue.UnmarshalJSON` reads what a step wrote (a JSON array of strings is an
array, a JSON object of strings an object, anything else a string), then checked against the
declared result type, which fails the task on a mismatch as Tekton's reconciler does.
"""

from __future__ import annotations

import json
from typing import Any

from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import Value

TYPES = ("string", "array", "object")


class ResultTypeError(ValueError):
    """A result not of its declared type, or without a key its properties declare: Tekton fails the
    TaskRun with reason FailedValidation (pkg/reconciler/taskrun validateTaskRunResults)."""


def declared_type(decl: dict[str, Any]) -> str:
    """A param or result declaration's type: explicit, or implied by `properties` or the default."""
    if "type" in decl:
        return str(decl["type"])
    default = decl.get("default")
    if "properties" in decl or isinstance(default, dict):
        return "object"
    return "array" if isinstance(default, list) else "string"


def typed_param(value: Any, decl: dict[str, Any], where: str) -> Value:
    """`value` as the declared type; object keys the declaration lists must all be there."""
    kind = declared_type(decl)
    if value is None:
        raise UnsupportedError(f"{where}: no value given and no default")
    if kind not in TYPES:
        raise UnsupportedError(f"{where}: param type {kind!r} is not string, array or object")
    if kind == "array":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UnsupportedError(f"{where}: expected an array of strings")
        return list(value)
    if kind == "object":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise UnsupportedError(f"{where}: expected an object of strings")
        default = decl.get("default")
        if isinstance(default, dict):  # keys not given keep the default's (Tekton's object replacements)
            value = {**default, **value}
        missing = sorted(set(decl.get("properties") or {}) - set(value))
        if missing:
            raise UnsupportedError(f"{where}: object value has no key {missing[0]!r}")
        return {str(k): v for k, v in value.items()}
    if not isinstance(value, str):
        raise UnsupportedError(f"{where}: expected a string")
    return value


def value_type(value: Any) -> str:
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "string"


def parse_result(text: Value) -> Value:
    """A result file's text as Tekton types it (pkg/apis/pipeline/v1 ParamValue.UnmarshalJSON); a
    value already typed (a matrixed task's results fanned in as arrays) as it is."""
    if not isinstance(text, str):
        return text
    if text[:1] in ("[", "{"):  # as Go's: leading space makes it a string, trailing space is fine
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return parsed
        if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
            return parsed
    if text.startswith('"'):
        try:
            unquoted = json.loads(text)
        except ValueError:
            return text
        if isinstance(unquoted, str):
            return unquoted
    return text


def check_results(texts: dict[str, str], declared: list[dict[str, Any]]) -> None:
    """Raise ResultTypeError when a written result is not of its declared type, or an object result
    lacks a key its `properties` list (Tekton fails the TaskRun on both)."""
    for decl in declared:
        name = decl["name"]
        if name not in texts:
            continue
        value, kind = parse_result(texts[name]), declared_type(decl)
        if value_type(value) != kind:
            raise ResultTypeError(
                f"result {name!r} is declared {kind} but was written as {value_type(value)} "
                f"(an array or object result is JSON: {_example(kind)})"
            )
        missing = sorted(set(decl.get("properties") or {}) - set(value)) if isinstance(value, dict) else []
        if missing:
            raise ResultTypeError(f"object result {name!r} has no key {missing[0]!r} its properties declare")


def _example(kind: str) -> str:
    return {"array": '["a", "b"]', "object": '{"key": "value"}'}.get(kind, "text")
