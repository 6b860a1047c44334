"""A step `ref` to a StepAction, inlined as the step it stands for (Tekton's docs/stepactions.md).

The StepAction gives image, command/args or script, env, workingDir, securityContext and
volumeMounts; the referencing step keeps its name, onError and timeout and gives the StepAction's
params (`params` of the step, else the StepAction's defaults, a default may use other params).
Inside the StepAction `$(params.p)`, `$(params.p[*])` (a whole element of a list, expanded into
the array's items), `$(params.p[i])` and `$(params.p.key)` are its own params. A step param's
value is left for the task phase: `$(params.x)` there is the task's param, so a value that is a
whole task param (`$(params.x[*])`) stays a reference to it, by item or key.

The StepAction's `results` become the step's (step results, stepresults.py); a step param given
a step result (`$(steps.s.results.r)`, `[*]`) stands for it where the StepAction uses the param,
with `[i]` and `.key`, as Tekton's replacements do; the result is read when the step starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from controller.executors.local.documents import Document
from controller.executors.local.params import resolve_defaults
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.typed import declared_type, typed_param
from controller.executors.local.variables import Scope, VariableError, references, substitute

# fields a step with `ref` may have (Tekton refuses image, command, args, script, env, workingDir,
# volumeMounts and results next to a ref)
STEP_WITH_REF = {"name", "ref", "params", "onError", "timeout", "computeResources", "displayName"}
ACTION_FIELDS = ("image", "command", "args", "script", "env", "workingDir", "securityContext", "volumeMounts")
T = TypeVar("T")
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
    values = _values(step.get("params"), spec.get("params"), action, doc, path)
    _merge_objects(values, spec.get("params"), task_params, given or {})
    # the StepAction's own params, by the executor's one substitution engine; other references
    # (a task param a step param's value names, results, workspaces) are left for the task phase
    known = {f"params.{name}": value for name, value in values.items()}
    inlined = {k: v for k, v in step.items() if k not in ("ref", "params")}
    for key in ACTION_FIELDS:
        if key not in spec:
            continue
        if key == "script" and any(r.startswith("params.") for r in references(spec[key])):
            raise action.error("$.spec.script", "params cannot be used in a StepAction's script (use env)")
        scope = Scope(known, ("params",), (), f"$.spec.{key}", forward=True)
        inlined[key] = _in(action, substitute, spec[key], scope)
    if "results" in spec:  # the step's results (stepresults.py), as Tekton copies them
        inlined["results"] = spec["results"]
    return inlined


def _values(given: Any, declared: Any, action: Document, doc: Document, path: str) -> dict[str, Any]:
    """Each StepAction param: the step's value, else its default (defaults may use other params);
    an object's keys not given keep the default's."""
    provided = {p["name"]: p.get("value") for p in _named(given, doc, f"{path}.params")}
    declared = _named(declared, action, "$.spec.params")
    names = [p["name"] for p in declared]
    for name in provided:
        if name not in names:
            raise doc.error(f"{path}.params", f"StepAction {action.name!r} declares no param {name!r}")
    for decl in declared:
        if decl["name"] not in provided and "default" not in decl:
            raise doc.error(
                f"{path}.params", f"StepAction param {decl['name']!r} has no value and no default"
            )
    values = _in(action, resolve_defaults, declared, provided, {}, "$.spec.params", True)
    for i, decl in enumerate(declared):
        name = decl["name"]
        if declared_type(decl) == "object" and isinstance(values[name], dict):
            where = f"$.spec.params[{i}] ({name})"
            values[name] = _in(action, typed_param, values[name], decl, where)
    return values


def _in(action: Document, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, its variable or value error (`$.path: why`) shown at that path of the StepAction."""
    try:
        return work(*args)
    except (VariableError, UnsupportedError) as exc:
        where, _, why = str(exc).partition(": ")
        raise action.error(where.split(" ", 1)[0], why) from None


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
