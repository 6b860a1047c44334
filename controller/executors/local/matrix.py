"""`matrix`: one pipeline task fanned out into one TaskRun per combination of params, as Tekton does.

Combinations follow Tekton's `Matrix.FanOut` (pkg/apis/pipeline/v1/matrix_types.go): the params'
arrays multiplied out in order (each new param's values outermost), then each `include` entry
either added to every combination it does not contradict or, when it matches none, appended as a
combination of its own; `include` alone gives exactly its entries. The TaskRuns are named
`<pipelinerun>-<task>-<index>`; their string results come back as arrays, in combination order
(`$(tasks.t.results.r[*])`), and `$(tasks.t.matrix.length)` / `$(tasks.t.matrix.r.length)` count them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from controller.executors.local.variables import Scope, VariableError, references, substitute, substitute_list

# Tekton's default `default-max-matrix-combinations-count` (config-defaults): more is refused.
MAX_COMBINATIONS = 256


class MatrixError(ValueError):
    """A matrix that cannot fan out (too many combinations, a param that is not an array)."""


@dataclass(frozen=True)
class Combination:
    params: dict[str, str]
    name: str = ""  # the include entry's `name`, when it came from one


def combinations(
    params: list[tuple[str, list[str]]], include: list[tuple[str, dict[str, str]]]
) -> list[Combination]:
    """Tekton's fan-out of already-resolved matrix params and include entries."""
    if include and not params:
        return [Combination(dict(values), name) for name, values in include]
    combos: list[dict[str, str]] = []
    for param, options in params:
        if not combos:
            combos = [{param: v} for v in options]
        else:
            combos = [{**combo, param: v} for v in options for combo in combos]
    names = [""] * len(combos)
    for i, combo in enumerate(combos):  # overwriteCombinations: add to each one it does not contradict
        for name, values in include:
            if all(combo.get(k, v) == v for k, v in values.items()):
                combo.update(values)
                names[i] = names[i] or name
    for name, values in include:  # addNewCombinations: an entry sharing no value with any is its own
        if values and not any(c.get(k) == v for c in combos for k, v in values.items()):
            combos.append(dict(values))
            names.append(name)
    return [Combination(c, n) for c, n in zip(combos, names, strict=True)]


def count(matrix: dict[str, Any]) -> int | None:
    """How many combinations a matrix of literal values makes; None when a value is a variable."""
    params = []
    for param in matrix.get("params") or []:
        value = param.get("value")
        if not isinstance(value, list) or any("$(" in str(v) for v in value):
            return None
        params.append((str(param.get("name")), [str(v) for v in value]))
    include = []
    for entry in matrix.get("include") or []:
        values = {str(p.get("name")): str(p.get("value")) for p in entry.get("params") or []}
        if any("$(" in v for v in values.values()):
            return None
        include.append((str(entry.get("name") or ""), values))
    return len(combinations(params, include))


def fan_out(matrix: dict[str, Any], scope: Scope, where: str) -> list[Combination]:
    """The task's combinations with the pipeline's variables (params, results) substituted."""
    params: list[tuple[str, list[str]]] = []
    for i, param in enumerate(matrix.get("params") or []):
        value = param.get("value")
        resolved = substitute_list(value if isinstance(value, list) else [value], scope)
        if not all(isinstance(v, str) for v in resolved):
            raise MatrixError(f"{where}.matrix.params[{i}]: a matrix param is an array of strings")
        params.append((param["name"], resolved))
    include = []
    for entry in matrix.get("include") or []:
        values = {p["name"]: substitute(p.get("value"), scope) for p in entry.get("params") or []}
        if not all(isinstance(v, str) for v in values.values()):
            raise MatrixError(f"{where}.matrix.include: include params are strings")
        include.append((str(entry.get("name") or ""), values))  # named per combination: display_name
    found = combinations(params, include)
    if len(found) > MAX_COMBINATIONS:
        raise MatrixError(too_many(len(found), f"{where}.matrix"))
    return found


def display_name(combo: Combination, task: dict[str, Any]) -> str:
    """A combination's name: its include entry's `name`, else the task's `displayName`, with the
    combination's and the task's own params substituted (Tekton's childReferences displayName)."""
    text = combo.name or str(task.get("displayName") or "")
    given = {
        f"params.{p['name']}": p.get("value")
        for p in task.get("params") or []
        if isinstance(p.get("value"), str)
    }
    given.update({f"params.{k}": v for k, v in combo.params.items()})
    try:
        return str(substitute(text, Scope(given, (), (), "")))
    except VariableError:
        return text


def too_many(n: int, where: str) -> str:
    return (
        f"{where}: {n} combinations, over Tekton's default maximum of {MAX_COMBINATIONS} TaskRuns per matrix"
    )


def has_empty_array(matrix: dict[str, Any], scope: Scope) -> bool:
    """Tekton skips a matrixed task one of whose params is an empty array."""
    for param in matrix.get("params") or []:
        value = param.get("value")
        try:
            if not substitute_list(value if isinstance(value, list) else [value], scope):
                return True
        except VariableError:
            return False
    return False


_MATRIX_REF = re.compile(r"tasks\.([^.\[]+)\.matrix(\.|$)")


def matrix_refs(obj: Any) -> set[str]:
    """Tasks whose `$(tasks.T.matrix.length)` / `$(tasks.T.matrix.R.length)` `obj` reads."""
    return {m.group(1) for ref in references(obj) if (m := _MATRIX_REF.match(ref))}


def matrix_values(task: str, n: int, results: dict[str, list[str]]) -> dict[str, str]:
    """The matrix context variables of a fanned-out task."""
    values = {f"tasks.{task}.matrix.length": str(n)}
    values.update({f"tasks.{task}.matrix.{r}.length": str(len(v)) for r, v in results.items()})
    return values


def combination_task(task: dict[str, Any], combo: Combination) -> dict[str, Any]:
    """The pipeline task of one combination: its params plus the combination's, no matrix."""
    own = [p for p in task.get("params") or [] if p.get("name") not in combo.params]
    params = own + [{"name": k, "value": v} for k, v in combo.params.items()]
    return {**{k: v for k, v in task.items() if k != "matrix"}, "params": params}
