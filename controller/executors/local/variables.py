"""Tekton `$(...)` variable substitution, done in phases like the Tekton controller does.

A phase knows some variables (a `Scope`): it replaces those, raises on a reference in a
namespace it owns but cannot resolve (a typo must not run with a literal `$(params.x)`),
and leaves the rest for a later phase. `$(date)`-style shell substitutions in scripts are
not Tekton variables and are never touched. After the last phase, `check_resolved` turns any
Tekton reference still left into an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The roots Tekton gives meaning to. A `$(...)` starting with anything else is not Tekton's.
TEKTON_ROOTS = ("params", "tasks", "results", "workspaces", "context", "steps", "step", "finally")

_REF = re.compile(r"\$\(([^()\s]+)\)")
# params["name"] / params['name'] -> params.name (Tekton allows both spellings)
_BRACKET_NAME = re.compile(r"""^(params|results|tasks\.[^.\[]+\.results)\[(["'])([^"']+)\2\]""")


class VariableError(ValueError):
    """A `$(...)` reference the executor cannot resolve; the message names it."""


Value = str | list[str]


@dataclass
class Scope:
    """Variables known in one substitution phase.

    `values` maps a normalised reference (`params.x`, `tasks.t.results.r`, `context.pipelineRun.name`)
    to a string or an array. `owned` are the prefixes this phase is responsible for: an unknown
    reference under one of them is an error. `pending` are prefixes known to be resolved later
    (left alone even if owned by this phase).
    """

    values: dict[str, Value] = field(default_factory=dict)
    owned: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    where: str = ""

    def child(self, values: Mapping[str, Value], owned: Iterable[str], where: str) -> Scope:
        return Scope(dict(values), tuple(owned), (), where)


def normalise(ref: str) -> str:
    match = _BRACKET_NAME.match(ref)
    if match:
        ref = f"{match.group(1)}.{match.group(3)}{ref[match.end() :]}"
    return ref


def _is_tekton(ref: str) -> bool:
    root = ref.split(".", 1)[0].split("[", 1)[0]
    return root in TEKTON_ROOTS


def _starts(ref: str, prefixes: tuple[str, ...]) -> bool:
    return any(ref == p or ref.startswith(p + ".") or ref.startswith(p + "[") for p in prefixes)


def _lookup(ref: str, scope: Scope) -> Value | None:
    """The value of `ref`, an element `x[3]`, or None when this scope does not know it."""
    if ref in scope.values:
        return scope.values[ref]
    if ref.endswith("[*]") and ref[:-3] in scope.values:
        return scope.values[ref[:-3]]
    index = re.fullmatch(r"(.+)\[(\d+)\]", ref)
    if index and index.group(1) in scope.values:
        array = scope.values[index.group(1)]
        if isinstance(array, list):
            i = int(index.group(2))
            if i >= len(array):
                raise VariableError(f"{scope.where}: $({ref}) is out of range (array of {len(array)})")
            return array[i]
    return None


def _unknown(ref: str, scope: Scope) -> bool:
    return _starts(ref, scope.owned) and not _starts(ref, scope.pending)


def substitute_string(text: str, scope: Scope) -> str:
    """Replace the references `scope` knows inside one string (arrays are not allowed here)."""

    def replace(match: re.Match[str]) -> str:
        ref = normalise(match.group(1))
        if not _is_tekton(ref):
            return match.group(0)
        value = _lookup(ref, scope)
        if value is None:
            if _unknown(ref, scope):
                raise VariableError(f"{scope.where}: unknown variable $({match.group(1)})")
            return match.group(0)
        if isinstance(value, list):
            raise VariableError(
                f"{scope.where}: array $({match.group(1)}) can only be used as a whole array element"
            )
        return value

    return _REF.sub(replace, text)


def substitute_list(items: list[Any], scope: Scope) -> list[Any]:
    """Substitute in a list of strings, expanding an element that is exactly `$(x[*])` or an array."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            whole = _REF.fullmatch(item)
            if whole:
                ref = normalise(whole.group(1))
                value = _lookup(ref, scope) if _is_tekton(ref) else None
                if isinstance(value, list):
                    out.extend(value)
                    continue
            out.append(substitute_string(item, scope))
        else:
            out.append(substitute(item, scope))
    return out


def substitute(obj: Any, scope: Scope) -> Any:
    """Substitute everywhere in a JSON-like object (strings, lists, mappings); keys are left alone."""
    if isinstance(obj, str):
        return substitute_string(obj, scope)
    if isinstance(obj, list):
        return substitute_list(obj, scope)
    if isinstance(obj, dict):
        return {k: substitute(v, scope) for k, v in obj.items()}
    return obj


def references(obj: Any) -> list[str]:
    """Every Tekton reference in a JSON-like object, normalised, in order of appearance."""
    found: list[str] = []
    if isinstance(obj, str):
        found.extend(normalise(m.group(1)) for m in _REF.finditer(obj) if _is_tekton(normalise(m.group(1))))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(references(item))
    elif isinstance(obj, dict):
        for value in obj.values():
            found.extend(references(value))
    return found


def task_result_refs(obj: Any) -> list[tuple[str, str]]:
    """(task, result) for every `$(tasks.T.results.R...)` in `obj`."""
    out = []
    for ref in references(obj):
        parts = ref.split(".")
        if len(parts) >= 4 and parts[0] == "tasks" and parts[2] == "results":
            out.append((parts[1], re.split(r"[\[.]", parts[3], maxsplit=1)[0]))
    return out


def check_resolved(obj: Any, where: str) -> None:
    """Raise on the first Tekton reference left after the last phase."""
    left = references(obj)
    if left:
        raise VariableError(f"{where}: variable $({left[0]}) is not supported by the local executor")
