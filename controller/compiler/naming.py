"""Names the compiler emits: Kubernetes/Tekton-safe, unique and deterministic."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from controller.spec.model import Workflow

MAX_LABEL = 63
RUN_PREFIX_MAX = 40
RUN_HASH_LENGTH = 10
_INVALID_DNS = re.compile(r"[^a-z0-9-]+")
_INVALID_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")
_PARAM_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@functools.lru_cache(maxsize=1024)
def dns_label(text: str, max_length: int = MAX_LABEL) -> str:
    """A DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric."""
    label = _INVALID_DNS.sub("-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)[:max_length].strip("-")
    return label or "x"


LABEL_HASH_LENGTH = 10


@functools.lru_cache(maxsize=1024)
def label_value(text: str) -> str:
    """A valid Kubernetes label value (<= 63 chars of [A-Za-z0-9_.-], alphanumeric at both ends).

    A longer text (a 76-character WorkflowRun name is a valid object name) takes a hashed form,
    `<first 52 characters>-<10 hex digits of sha256(text)>`, so two long names never share a
    value as they would if cut at 63.
    """
    value = _INVALID_LABEL_VALUE.sub("-", text).strip("-_.")
    if len(value) <= MAX_LABEL:
        return value
    digest = hashlib.sha256(text.encode()).hexdigest()[:LABEL_HASH_LENGTH]
    return f"{value[: MAX_LABEL - LABEL_HASH_LENGTH - 1].rstrip('-_.')}-{digest}"


@functools.lru_cache(maxsize=1024)
def param_name(text: str) -> str:
    """A Tekton parameter name usable as `$(params.NAME)` (no dots, starts with a letter or '_')."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", text)
    return name if _PARAM_OK.match(name) else f"_{name}"


@functools.lru_cache(maxsize=1024)
def env_name(text: str) -> str:
    """An environment variable name: upper case, '-' and other separators become '_'."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
    return name if name and not name[0].isdigit() else f"_{name}"


class UniqueNames:
    """Hands out names that never collide, adding `-2`, `-3`... to a taken base (deterministically)."""

    def __init__(self, taken: set[str] | None = None, *, max_length: int = MAX_LABEL) -> None:
        self.taken: set[str] = set(taken or ())
        self.max_length = max_length

    def claim(self, base: str) -> str:
        base = base[: self.max_length]
        candidate, counter = base, 1
        while candidate in self.taken:
            counter += 1
            suffix = f"-{counter}"
            candidate = base[: self.max_length - len(suffix)].rstrip("-") + suffix
        self.taken.add(candidate)
        return candidate


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def effective_input_values(workflow: Workflow, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Given values over declared defaults (codeset inputs excluded: their revision counts instead)."""
    values: dict[str, Any] = {}
    for declared in workflow.inputs:
        if declared.type == "codeset":
            continue
        if declared.name in inputs:
            values[declared.name] = inputs[declared.name]
        elif declared.default is not None:
            values[declared.name] = declared.default
    for name, value in inputs.items():  # undeclared names are kept so different requests never share a name
        if workflow.input(name) is None:
            values[name] = value
    return values


def run_name_for(workflow: Workflow, inputs: Mapping[str, Any], revisions: Mapping[str, str]) -> str:
    """The deterministic run name of (workflow, generation, codeset revisions, input values).

    `{workflow name[:40]}-{10 hex digits of sha256}`; inputs equal to their defaults
    hash the same as inputs left out, so a restart never makes a second run.
    """
    identity = {
        "workflow": workflow.name,
        "generation": workflow.generation,
        "revisions": dict(revisions),
        "inputs": effective_input_values(workflow, inputs),
    }
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:RUN_HASH_LENGTH]
    return f"{dns_label(workflow.name, RUN_PREFIX_MAX)}-{digest}"
