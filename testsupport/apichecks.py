"""What a real Kubernetes API server checks before it stores an object, for the emulator.

- object names (DNS-1123 subdomain, <= 253 characters; Events excepted), label keys and values
  (syntax, 63 characters, prefix <= 253), annotations (keys like labels, 256 KiB in all), and a
  stored object over etcd's 1.5 MiB (500 "etcdserver: request is too large", which is what the API
  server answers, not a 4xx): `check_object`;
- the request body limit (`MAX_REQUEST_BYTES`, 413 above it), enforced where requests are handled;
- equality-based label selectors (`matches_selector`);
- admission against a CustomResourceDefinition's `openAPIV3Schema` (`admission_problem`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import kmock

# What kube-apiserver and etcd enforce (k8s.io/apimachinery validation, apiserver config, etcd).
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # apiserver's MaxRequestBodyBytes: 413 above it
MAX_OBJECT_BYTES = 1536 * 1024  # etcd's --max-request-bytes default (1.5 MiB)
MAX_ANNOTATIONS_BYTES = 256 * 1024  # TotalAnnotationSizeLimitB
MAX_NAME = 253
MAX_LABEL = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def api_error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


def _qualified_name_problem(key: str) -> str | None:
    """A label or annotation key: `[prefix/]name`, prefix a DNS subdomain <= 253, name <= 63."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > MAX_NAME or not _DNS_SUBDOMAIN.match(prefix)):
        return f"{key!r}: prefix part must be a DNS-1123 subdomain of at most {MAX_NAME} characters"
    if not name or len(name) > MAX_LABEL or not _QUALIFIED_NAME.match(name):
        return (
            f"{key!r}: name part must be at most {MAX_LABEL} alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def check_object(kind: str, obj: Mapping[str, Any]) -> None:
    """The metadata validation and etcd size limit of a real API server (422 / 500)."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if kind != "Event" and (len(name) > MAX_NAME or not _DNS_SUBDOMAIN.match(name)):
        raise api_error(
            422,
            "Invalid",
            f'{kind} "{name[:80]}" is invalid: metadata.name: Invalid value: a lowercase RFC 1123 '
            f"subdomain of at most {MAX_NAME} characters is required",
        )
    for key, value in (meta.get("labels") or {}).items():
        problem = _qualified_name_problem(str(key))
        if problem is None and (
            not isinstance(value, str) or len(value) > MAX_LABEL or not _LABEL_VALUE.match(value)
        ):
            problem = (
                f"{str(value)[:80]!r}: must be no more than {MAX_LABEL} characters of alphanumerics, "
                "'-', '_' or '.', starting and ending with an alphanumeric"
            )
        if problem:
            raise api_error(
                422, "Invalid", f'{kind} "{name}" is invalid: metadata.labels: Invalid value: {problem}'
            )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        problem = _qualified_name_problem(str(key))
        if problem:
            raise api_error(
                422, "Invalid", f'{kind} "{name}" is invalid: metadata.annotations: Invalid value: {problem}'
            )
    total = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if total > MAX_ANNOTATIONS_BYTES:
        raise api_error(
            422,
            "Invalid",
            f'{kind} "{name}" is invalid: metadata.annotations: Too long: must have at most '
            f"{MAX_ANNOTATIONS_BYTES} bytes",
        )
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size > MAX_OBJECT_BYTES:
        # what kube-apiserver passes on from etcd (kubernetes/kubernetes#112152): a 500, not a 4xx
        raise api_error(500, "InternalError", "etcdserver: request is too large")


def matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a` joined by commas."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def admission_problem(schema: Mapping[str, Any], obj: Mapping[str, Any]) -> str | None:
    """The first thing a CRD's `openAPIV3Schema` rejects in `obj` (`path: message`), or None."""
    body = {k: v for k, v in obj.items() if k != "metadata"}
    validator = jsonschema.Draft4Validator(_without_nullables(schema))
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if not problems:
        return None
    first = problems[0]
    where = ".".join(str(p) for p in first.absolute_path) or "<root>"
    return f"{where}: {first.message}"


def _without_nullables(schema: Any) -> Any:
    """OpenAPI's `nullable: true` -> JSON Schema's null type, so admission accepts nulls as the API does."""
    if isinstance(schema, list):
        return [_without_nullables(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result = {k: _without_nullables(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        result["type"] = ["integer", "string"]
    return result
