"""A step `ref` to a StepAction, inlined as the step it stands for (Tekton's docs/stepactions.md).

The StepAction gives image, command/args or script, env, workingDir, securityContext and
volumeMounts; the referencing step keeps its name, onError and timeout and gives the StepAction's
params (`params` of the step, else the StepAction's defaults, a default may use other params).
Inside the StepAction `$(params.p)`, `$(params.p[*])` (a whole element of a list, expanded into
the array's items), `$(params.p[i])` and `$(params.p.key)` are its own params. A step param's
value is left for the task phase: `$(params.x)` there is the task's param, so a value that is a
whole task param (`$(params.x[*])`) stays a reference to it, by item or key.

Step results (`$(step.results.r.path)`, `$(steps.s.results.r)`) are refused: not run locally yet.
"""

from __future__ import annotations

import re
from typing import Any

from controller.executors.local.documents import Document

# fields a step with `ref` may have (Tekton refuses image, command, args, script, env, workingDir,
# volumeMounts and results next to a ref)
STEP_WITH_REF = {"name", "ref", "params", "onError", "timeout", "computeResources", "displayName"}
ACTION_FIELDS = ("image", "command", "args", "script", "env", "workingDir", "securityContext", "volumeMounts")
_REF = re.compile(
    r"\$\(params(?:\.([A-Za-z0-9_-]+)|\[['\"]([A-Za-z0-9_.-]+)['\"]\])"  # $(params.p) or $(params["p"])
    r"(\[\*\]|\[\d+\]|\.[A-Za-z0-9_-]+)?\)"  # then [*], [i] or .key
)
_WHOLE = re.compile(r"^\$\(params\.([A-Za-z0-9_-]+)(?:\[\*\])?\)$")


def inline_step_action(
    step: dict[str, Any],
    action: Document,
    doc: Document,
    path: str,
    task_params: Any = None,
    given: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The step `step` (at `path` of `doc`) with its StepAction's fields and params applied;
    `task_params`, `given`: the task's param declarations and the values a TaskRun gives them, to
    merge a whole object param's keys with the StepAction's default."""
    for key in step:
        if key not in STEP_WITH_REF:
            raise doc.error(f"{path}.{key}", f"{key} cannot be used with a StepAction ref (as in Tekton)")
    spec = action.body.get("spec")
    if not isinstance(spec, dict):
        raise action.error("$.spec", "a StepAction needs a spec")
    if spec.get("results"):
        raise action.error("$.spec.results", "StepAction results (step results) are not run locally yet")
    values = _values(step.get("params"), spec.get("params"), action, doc, path)
    _merge_objects(values, spec.get("params"), task_params, given or {})
    for name, value in values.items():
        if "$(steps." in str(value):
            raise doc.error(
                f"{path}.params", f"param {name!r}: step results ($(steps...)) are not run locally yet"
            )
    inlined = {k: v for k, v in step.items() if k not in ("ref", "params")}
    for key in ACTION_FIELDS:
        if key not in spec:
            continue
        if key == "script" and _REF.search(spec[key]):
            raise action.error("$.spec.script", "params cannot be used in a StepAction's script (use env)")
        inlined[key] = _apply(spec[key], values, action, f"$.spec.{key}")
    return inlined


def _values(given: Any, declared: Any, action: Document, doc: Document, path: str) -> dict[str, Any]:
    """Each StepAction param: the step's value, else its default (defaults may use other params)."""
    provided = {p["name"]: p.get("value") for p in _named(given, doc, f"{path}.params")}
    declared = _named(declared, action, "$.spec.params")
    names = [p["name"] for p in declared]
    for name in provided:
        if name not in names:
            raise doc.error(f"{path}.params", f"StepAction {action.name!r} declares no param {name!r}")
    values: dict[str, Any] = {}
    pending: dict[str, Any] = {}
    for decl in declared:
        name = decl["name"]
        if name in provided:
            values[name] = provided[name]
        elif "default" in decl:
            default = decl["default"]
            if isinstance(default, str) and "$(params." in default:
                pending[name] = default
            else:
                values[name] = default
        else:
            raise doc.error(f"{path}.params", f"StepAction param {name!r} has no value and no default")
        if isinstance(decl.get("default"), dict) and isinstance(values.get(name), dict):
            values[name] = {**decl["default"], **values[name]}  # keys not given keep their defaults
    while pending:  # defaults that use other params, resolved in dependency order
        ready = {n: d for n, d in pending.items() if all(r[0] in values for r in _names(d))}
        if not ready:
            first = sorted(pending)[0]
            raise action.error("$.spec.params", f"param {first!r}: circular or unknown reference")
        for name, default in ready.items():
            values[name] = _apply(default, values, action, "$.spec.params")
            del pending[name]
    return values


def _merge_objects(values: dict[str, Any], declared: Any, task_params: Any, given: dict[str, Any]) -> None:
    """A StepAction object param given a whole task param (`$(params.x[*])`) takes each key that
    param has (its declared properties and default keys, the keys of the value a TaskRun gives it)
    from it, and its other keys from its own default, as Tekton merges an object's default with
    the value given (a task param that is not an object gives none). Unknown before the run (a
    propagated param of a PipelineRun): left to the task phase."""
    task = {p["name"]: p for p in task_params or [] if isinstance(p, dict) and isinstance(p.get("name"), str)}
    for decl in declared or []:
        default, value = decl.get("default"), values.get(decl["name"])
        outer = _WHOLE.match(value) if isinstance(value, str) else None
        if not isinstance(default, dict) or outer is None:
            continue
        name = outer.group(1)
        if name not in task and name not in given:
            continue
        spec = task.get(name, {})
        keys = {*(spec.get("properties") or {})}
        for source in (spec.get("default"), given.get(name)):
            keys |= set(source) if isinstance(source, dict) else set()
        values[decl["name"]] = {
            **{k: v for k, v in default.items() if k not in keys},
            **{k: f"$(params.{name}.{k})" for k in keys},
        }


def _named(items: Any, doc: Document, path: str) -> list[dict[str, Any]]:
    """A list of objects each with a string `name` (params and their declarations)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise doc.error(path, "expected a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise doc.error(f"{path}[{i}]", "expected an object with a name")
    return items


def _names(text: str) -> list[tuple[str, str]]:
    return [(m.group(1) or m.group(2), m.group(3) or "") for m in _REF.finditer(text)]


def _apply(value: Any, values: dict[str, Any], action: Document, path: str) -> Any:
    """`value` with the StepAction's param references replaced; `[*]` alone in a list item expands."""
    if isinstance(value, list):
        out: list[Any] = []
        for i, item in enumerate(value):
            whole = _REF.fullmatch(item) if isinstance(item, str) else None
            if whole and whole.group(3) == "[*]":
                out.extend(_items(whole.group(1) or whole.group(2), values, action, f"{path}[{i}]"))
            else:
                out.append(_apply(item, values, action, f"{path}[{i}]"))
        return out
    if isinstance(value, dict):
        return {k: _apply(v, values, action, f"{path}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return value
    return _REF.sub(lambda m: _one(m, values, action, path), value)


def _items(name: str, values: dict[str, Any], action: Document, path: str) -> list[str]:
    value = _known(name, values, action, path)
    if isinstance(value, list):
        return [str(v) for v in value]
    outer = _WHOLE.match(value) if isinstance(value, str) else None
    if outer:  # the task's array param: expanded in the task phase
        return [f"$(params.{outer.group(1)}[*])"]
    raise action.error(path, f"param {name!r} is not an array")


def _one(match: re.Match[str], values: dict[str, Any], action: Document, path: str) -> str:
    name, tail = match.group(1) or match.group(2), match.group(3) or ""
    value = _known(name, values, action, path)
    outer = _WHOLE.match(value) if isinstance(value, str) else None
    if outer and tail:  # an item or key of the task's param, resolved in the task phase
        return f"$(params.{outer.group(1)}{tail})"
    if tail.startswith("["):
        if tail == "[*]" or not isinstance(value, list):
            raise action.error(path, f"$(params.{name}{tail}) must be a whole list item of an array param")
        index = int(tail[1:-1])
        if index >= len(value):
            raise action.error(path, f"$(params.{name}{tail}): index out of range ({len(value)} items)")
        return str(value[index])
    if tail.startswith("."):
        if not isinstance(value, dict) or tail[1:] not in value:
            raise action.error(path, f"$(params.{name}{tail}): no key {tail[1:]!r} in the object param")
        return str(value[tail[1:]])
    if not isinstance(value, str):
        raise action.error(path, f"$(params.{name}) is not a string param")
    return value


def _known(name: str, values: dict[str, Any], action: Document, path: str) -> Any:
    if name not in values:
        raise action.error(path, f"$(params.{name}): the StepAction declares no param {name!r}")
    return values[name]
