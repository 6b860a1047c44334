"""Input values and codeset sources: checked against the workflow before anything is emitted."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.compiler.errors import Problems
from controller.compiler.naming import dns_label
from controller.gitsafe import GitSafetyError, validate_ref, validate_url
from controller.spec.errors import shorten
from controller.spec.model import Input, Workflow
from controller.spec.suggest import did_you_mean


@dataclass(frozen=True)
class CodesetSource:
    """Where a codeset input comes from."""

    url: str
    revision: str  # a pinned commit SHA (or a tag/branch name when the caller has no SHA)
    secret_name: str | None = None  # Secret with git credentials -> a Secret-backed workspace


@dataclass(frozen=True)
class CodesetPlan:
    """A codeset input as the run checks it out: one clone task into `source/<subdir>`."""

    input: str
    url: str
    revision: str
    secret_name: str | None
    name: str  # the Codeset's name (FuseML: `inputs.X.name`)
    project: str  # FuseML: `inputs.X.project` (the repository's owner)
    subdir: str


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)  # string, dataset, model (a path or URI), codeset (a Codeset name)


def param_text(value: Any) -> str:
    """How a value travels as a Tekton string: strings as-is, scalars and structures as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def check_inputs(workflow: Workflow, inputs: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """Given values over defaults for every non-codeset input; problems for missing or mistyped ones."""
    values: dict[str, Any] = {}
    for name in inputs:
        if workflow.input(name) is None:
            known = ", ".join(i.name for i in workflow.inputs) or "none declared"
            hint = did_you_mean(name, (i.name for i in workflow.inputs))
            problems.error(
                f"$.inputs.{name}", "input.unknown", f"unknown input {name!r} (inputs: {known}){hint}"
            )
    for declared in workflow.inputs:
        path = f"$.inputs.{declared.name}"
        at = problems.input_path(declared.name)
        if declared.name in inputs:
            value = inputs[declared.name]
            if not _type_ok(declared.type, value):
                problems.error(
                    path,
                    "input.type",
                    f"input {declared.name!r} must be {_article(declared.type)}, got {shorten(value)}",
                    at=at,
                )
                continue
            values[declared.name] = value
        elif declared.type == "codeset":
            continue
        elif declared.default is not None:
            values[declared.name] = declared.default
        else:
            problems.error(path, "input.missing", f"input {declared.name!r} is required (no default)", at=at)
    return values


def plan_codesets(
    workflow: Workflow,
    values: Mapping[str, Any],
    sources: Mapping[str, CodesetSource],
    problems: Problems,
    *,
    allow_local_git: bool = False,
    allow_cluster_git_hosts: bool = False,
) -> dict[str, CodesetPlan]:
    """One plan per codeset input, with its URL and revision checked by `controller.gitsafe`
    (file:// and loopback URLs only with `allow_local_git`, cluster-internal and single-label hosts
    only with `allow_cluster_git_hosts`)."""
    plans: dict[str, CodesetPlan] = {}
    for name in sources:
        declared = workflow.input(name)
        if declared is None or declared.type != "codeset":
            problems.error(f"$.codesets.{name}", "codeset.unknown", f"{name!r} is not a codeset input")
    subdirs: set[str] = set()
    for declared in workflow.codeset_inputs:
        path = f"$.codesets.{declared.name}"
        at = problems.input_path(declared.name)
        source = sources.get(declared.name)
        if source is None:
            problems.error(
                path,
                "codeset.missing",
                f"codeset input {declared.name!r} needs a repository (--codeset {declared.name}=URL)",
                at=at,
            )
            continue
        try:
            url = validate_url(source.url, allow_local=allow_local_git, allow_cluster=allow_cluster_git_hosts)
            validate_ref(source.revision)
        except GitSafetyError as exc:
            problems.error(path, "codeset.unsafe", f"codeset {declared.name!r}: {exc}", at=at)
            continue
        subdir = dns_label(declared.name)
        while subdir in subdirs:
            subdir += "-x"
        subdirs.add(subdir)
        plans[declared.name] = CodesetPlan(
            input=declared.name,
            url=source.url,
            revision=source.revision,
            secret_name=source.secret_name,
            name=_codeset_name(declared, values, url.repo_name),
            project=url.project,
            subdir=subdir,
        )
    return plans


def _codeset_name(declared: Input, values: Mapping[str, Any], repo_name: str) -> str:
    given = values.get(declared.name)
    if isinstance(given, str) and given:
        return given
    if isinstance(declared.default, str) and declared.default:
        return declared.default
    return repo_name or declared.name


def _article(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind
