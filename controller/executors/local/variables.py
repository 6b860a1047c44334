"""Tekton `$(...)` variable substitution, done in phases like the Tekton controller does.

A phase knows some variables (a `Scope`): it replaces those, raises on a reference in a
namespace it owns but cannot resolve (a typo must not run with a literal `$(params.x)`),
and leaves the rest for a later phase. `$(date)`-style shell substitutions in scripts are
not Tekton variables and are never touched. Replacement is one pass, as Tekton's
`strings.Replacer`: a value that itself contains `$(...)` is not substituted again.

Values are strings, arrays or objects (Tekton's three param and result types). Where each may
stand follows Tekton (pkg/substitution): a string anywhere in text; an array only as a whole
element of a list (`["$(params.a[*])"]` becomes the array's items) or as a whole param value;
an object only as a whole param value; `x[i]` is an array's element and `x.key` an object's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The roots Tekton gives meaning to. A `$(...)` starting with anything else is not Tekton's
# (it is the shell's, or the Kubernetes `$(ENV_VAR)` expansion of command and args).
TEKTON_ROOTS = (
    "params",
    "inputs",
    "outputs",
    "resources",
    "tasks",
    "finally",
    "results",
    "workspaces",
    "context",
    "steps",
    "step",
    "artifacts",
    "credentials",
)

_REF = re.compile(r"\$\(([^()\s]+)\)")
# params["name"] / params['name'] -> params.name (Tekton allows both spellings)
_BRACKET_NAME = re.compile(
    r"""(params|results|tasks\.[^.\[]+\.results|finally\.[^.\[]+\.results)\[(["'])([^"']+)\2\]"""
)
_INDEX = re.compile(r"(.+)\[(\d+|\*)\]")


class VariableError(ValueError):
    """A `$(...)` reference the executor cannot resolve; the message names it."""


Value = str | list[str] | dict[str, str]


@dataclass
class Scope:
    """Variables known in one substitution phase.

    `values` maps a normalised reference (`params.x`, `tasks.t.results.r`, `context.pipelineRun.name`)
    to a string, an array or an object. `owned` are the prefixes this phase is responsible for: an
    unknown reference under one of them is an error. `pending` are prefixes known to be resolved
    later (left alone even if owned by this phase). With `forward`, a value that is itself a whole
    reference for a later phase (`$(params.x)`, `$(params.x[*])`: a StepAction param given a task
    param) stands for it: `[*]`, `[i]` or `.key` of it is that of the later reference, left for then.
    """

    values: dict[str, Value] = field(default_factory=dict)
    owned: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    where: str = ""
    forward: bool = False

    def child(self, values: Mapping[str, Value], owned: Iterable[str], where: str) -> Scope:
        return Scope(dict(values), tuple(owned), (), where)


def normalise(ref: str) -> str:
    """`params["a"][*]` -> `params.a[*]`; other spellings unchanged."""
    match = _BRACKET_NAME.match(ref)
    if match:
        ref = f"{match.group(1)}.{match.group(3)}{ref[match.end() :]}"
    return ref


def is_tekton(ref: str) -> bool:
    root = ref.split(".", 1)[0].split("[", 1)[0]
    return root in TEKTON_ROOTS and ("." in ref or "[" in ref)


def _starts(ref: str, prefixes: tuple[str, ...]) -> bool:
    return any(ref == p or ref.startswith(p + ".") or ref.startswith(p + "[") for p in prefixes)


def lookup(ref: str, scope: Scope) -> Value | None:
    """The value of `ref`, of `x[*]`, an element `x[3]`, a key `x.k`, or None when unknown here."""
    values = scope.values
    if ref in values:
        return values[ref]
    forwarded = _forwarded(ref, scope)
    if forwarded is not None:
        return forwarded
    index = _INDEX.fullmatch(ref)
    if index and index.group(1) in values:
        whole = values[index.group(1)]
        if index.group(2) == "*":
            if isinstance(whole, str):
                raise VariableError(
                    f"{scope.where}: $({ref}): [*] needs an array or object, this is a string"
                )
            return whole
        if not isinstance(whole, list):
            raise VariableError(f"{scope.where}: $({ref}): only an array can be indexed")
        i = int(index.group(2))
        if i >= len(whole):
            raise VariableError(f"{scope.where}: $({ref}) is out of range (array of {len(whole)})")
        return whole[i]
    head, _, key = ref.rpartition(".")
    if head in values and isinstance(values[head], dict):
        obj = values[head]
        assert isinstance(obj, dict)
        if key not in obj:
            raise VariableError(f"{scope.where}: $({ref}): the object has no key {key!r}")
        return obj[key]
    return None


def _forwarded(ref: str, scope: Scope) -> str | None:
    """With `scope.forward`: `$(R[*])`, `$(R[i])` or `$(R.key)` of a later reference `R` when `ref`
    is `[*]`, `[i]` or `.key` of a variable whose value is exactly `$(R)` or `$(R[*])`."""
    if not scope.forward:
        return None
    for name, value in scope.values.items():
        tail = ref[len(name) :]
        if not ref.startswith(name) or not (tail.startswith(".") or _INDEX.fullmatch("x" + tail)):
            continue
        whole = _REF.fullmatch(value) if isinstance(value, str) else None
        later = normalise(whole.group(1)).removesuffix("[*]") if whole else ""
        if is_tekton(later) and "[" not in later:
            return f"$({later}{tail})"
    return None


def _unknown(ref: str, scope: Scope) -> bool:
    return _starts(ref, scope.owned) and not _starts(ref, scope.pending)


def _kind(value: Value) -> str:
    return "array" if isinstance(value, list) else "object"


def substitute_string(text: str, scope: Scope) -> str:
    """Replace the references `scope` knows inside one string (arrays and objects are not allowed)."""

    def replace(match: re.Match[str]) -> str:
        ref = normalise(match.group(1))
        if not is_tekton(ref):
            return match.group(0)
        value = lookup(ref, scope)
        if value is None:
            if _unknown(ref, scope):
                raise VariableError(f"{scope.where}: unknown variable $({match.group(1)})")
            return match.group(0)
        if not isinstance(value, str):
            raise VariableError(
                f"{scope.where}: {_kind(value)} $({match.group(1)}) can only be used as a whole "
                "array element or a whole param value, not inside a string"
            )
        return value

    return _REF.sub(replace, text)


def _whole(item: str, scope: Scope) -> Value | None:
    """The value of an item that is exactly one known reference, else None."""
    whole = _REF.fullmatch(item)
    if not whole:
        return None
    ref = normalise(whole.group(1))
    return lookup(ref, scope) if is_tekton(ref) else None


def substitute_list(items: list[Any], scope: Scope) -> list[Any]:
    """Substitute in a list of strings, expanding an element that is exactly an array reference."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            value = _whole(item, scope)
            if isinstance(value, list):
                out.extend(value)
                continue
            out.append(substitute_string(item, scope))
        else:
            out.append(substitute(item, scope))
    return out


def substitute_value(value: Any, scope: Scope) -> Any:
    """A param value: a whole `$(x[*])` (or `$(x)`) of an array or object is that array or object."""
    if isinstance(value, str):
        whole = _whole(value, scope)
        if whole is not None and not isinstance(whole, str):
            return list(whole) if isinstance(whole, list) else dict(whole)
        return substitute_string(value, scope)
    if isinstance(value, dict):
        return {k: substitute_string(v, scope) if isinstance(v, str) else v for k, v in value.items()}
    return substitute(value, scope)


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
        found.extend(r for r in (normalise(m.group(1)) for m in _REF.finditer(obj)) if is_tekton(r))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(references(item))
    elif isinstance(obj, dict):
        for value in obj.values():
            found.extend(references(value))
    return found


def result_refs(obj: Any, section: str = "tasks") -> list[tuple[str, str]]:
    """(task, result) for every `$(<section>.T.results.R...)` in `obj`."""
    out = []
    for ref in references(obj):
        parts = ref.split(".")
        if len(parts) >= 4 and parts[0] == section and parts[2] == "results":
            out.append((parts[1], re.split(r"[\[.]", parts[3], maxsplit=1)[0]))
    return out


def task_result_refs(obj: Any) -> list[tuple[str, str]]:
    """(task, result) for every `$(tasks.T.results.R...)` in `obj`."""
    return result_refs(obj, "tasks")


def check_resolved(obj: Any, where: str) -> None:
    """Raise on the first Tekton reference left after the last phase."""
    left = references(obj)
    if left:
        raise VariableError(f"{where}: variable $({left[0]}) is not supported by the local executor")
