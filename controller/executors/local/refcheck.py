"""Every `$(...)` of a PipelineRun checked before anything runs: known, or refused with its JSON path.

What a field may refer to follows Tekton's docs/variables.md: a pipeline task's params, `when`,
`displayName` and workspace `subPath` see pipeline params, other tasks' results, the pipeline
context and `workspaces.W.bound` (a `finally` task also the tasks' statuses); an embedded taskSpec
sees its own params, results and workspaces, the task context, and what propagates into it from
the pipeline (params, results, workspaces, pipeline context). Variables Tekton defines but the
executor does not implement are refused with the reason; anything else is unknown.
"""

from __future__ import annotations

import re
from typing import Any

from controller.executors.local import stepresults
from controller.executors.local.params import is_referenced, pipeline_is_referenced
from controller.executors.local.resolve import step_dirs
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.typed import declared_type
from controller.executors.local.variables import is_tekton, normalise

_REF = re.compile(r"\$\(([^()\s]+)\)")

# Tekton variables the local executor does not implement, and why (checked in this order).
_NOT_HERE: list[tuple[str, str]] = [
    (
        r"(step\.)?artifacts\.path|tasks\.[^.]+\.(inputs|outputs)(\..*)?",
        "Tekton artifacts (an alpha feature) are not implemented locally",
    ),
    (r"credentials\.path", "credentials come from a cluster service account's secrets; none exist locally"),
    (r"(inputs|outputs)\.resources\..*|resources\..*", "PipelineResources were removed from Tekton v1"),
    (
        r"tasks\.status|tasks\.[^.]+\.(status|reason)|context\.pipelineTask\.retries",
        "Tekton substitutes this only in a pipeline task's params, when and displayName (status ones in "
        "finally tasks only): pass it to the task as a param",
    ),
]

_PIPELINE_CONTEXT = {
    "context.pipelineRun.name",
    "context.pipelineRun.namespace",
    "context.pipelineRun.uid",
    "context.pipeline.name",
}
_TASK_CONTEXT = {
    "context.taskRun.name",
    "context.taskRun.namespace",
    "context.taskRun.uid",
    "context.task.name",
    "context.task.retry-count",
}
# where a whole array or object may stand: a list element of these fields, or a whole param value
_ARRAY_FIELD = re.compile(
    r"\.(command|args|values)\[\d+\]$|\.(params|results)\[\d+\]\.(value|default)(\[\d+\])?$"
)
_INDEXED = re.compile(r"(.+)\[(\d+)\]")
_SUFFIX = re.compile(r"(\[(\d+|\*)\])?(\.[^.\[]+)?")


def _fields(obj: Any, path: str) -> list[tuple[str, str]]:
    """(JSON path, string) for every string in `obj`."""
    if isinstance(obj, str):
        return [(path, obj)]
    if isinstance(obj, list):
        return [f for i, item in enumerate(obj) for f in _fields(item, f"{path}[{i}]")]
    if isinstance(obj, dict):
        return [f for k, v in obj.items() for f in _fields(v, f"{path}.{k}")]
    return []


class _Names:
    """The names one field may refer to."""

    def __init__(self) -> None:
        self.exact: set[str] = set()  # full references (context, statuses, result paths)
        self.values: set[str] = set()  # params and results, which may take [i], [*], .key
        self.lengths: dict[str, int] = {}  # arrays whose length is known before the run: indexes checked
        self.whole: set[str] = set()  # arrays and objects: never inside a string


def _known(ref: str, names: _Names) -> bool:
    if ref in names.exact or ref in names.values:
        return True
    return any(ref.startswith(v) and _SUFFIX.fullmatch(ref[len(v) :]) for v in names.values)


def _check(obj: Any, path: str, names: _Names, context: str) -> None:
    for at, text in _fields(obj, path):
        for match in _REF.finditer(text):
            ref = normalise(match.group(1))
            if not is_tekton(ref):
                continue
            index = _INDEXED.fullmatch(ref)
            if index and int(index.group(2)) >= names.lengths.get(index.group(1), 1 << 30):
                length = names.lengths[index.group(1)]
                raise UnsupportedError(f"{at}: $({match.group(1)}) is out of range (array of {length})")
            base = ref[:-3] if ref.endswith("[*]") else ref
            if (base in names.whole or ref != base) and not (
                text == match.group(0) and _ARRAY_FIELD.search(at)
            ):
                raise UnsupportedError(
                    f"{at}: $({match.group(1)}) is an array or object: Tekton takes it only as a whole "
                    "element of command, args, a param value or `when` values"
                )
            if _known(ref, names):
                continue
            for pattern, why in _NOT_HERE:
                if re.fullmatch(pattern, ref):
                    raise UnsupportedError(f"{at}: $({match.group(1)}): {why}")
            raise UnsupportedError(f"{at}: unknown variable $({match.group(1)}) ({context})")


def _whole(prefix: str, decls: list[dict[str, Any]]) -> set[str]:
    return {f"{prefix}.{d['name']}" for d in decls if declared_type(d) != "string"}


def _lengths(
    decls: list[dict[str, Any]], given: list[dict[str, Any]], outer: dict[str, int]
) -> dict[str, int]:
    """`params.X` -> the length of X's array when it is fixed before the run: a literal value given,
    else the value propagated from outside, else the default."""
    lengths = dict(outer)
    for decl in decls:
        if isinstance(decl.get("default"), list) and f"params.{decl['name']}" not in outer:
            lengths[f"params.{decl['name']}"] = len(decl["default"])
    for param in given:
        value = param.get("value")
        key = f"params.{param['name']}"
        if isinstance(value, list) and not any("[*]" in str(v) for v in value):
            lengths[key] = len(value)
        else:
            lengths.pop(key, None)
    return lengths


def _results(task: dict[str, Any]) -> list[str]:
    return [r["name"] for r in (task.get("taskSpec") or {}).get("results") or []]


def check_references(run: dict[str, Any]) -> None:
    """Raise UnsupportedError naming the first `$(...)` Tekton would not substitute here."""
    spec = run["spec"]
    pipeline = spec["pipelineSpec"]
    params = {p["name"] for p in pipeline.get("params") or []}
    workspaces = {w["name"] for w in pipeline.get("workspaces") or []}
    if not pipeline_is_referenced(run):  # what the run gives an embedded pipeline propagates into it
        params |= {p["name"] for p in spec.get("params") or []}
        workspaces |= {w["name"] for w in spec.get("workspaces") or []}
    tasks = {t["name"]: t for t in pipeline.get("tasks") or []}
    finally_ = {t["name"]: t for t in pipeline.get("finally") or []}
    base = _Names()
    base.exact |= _PIPELINE_CONTEXT | {f"workspaces.{w}.bound" for w in workspaces}
    base.values |= {f"params.{p}" for p in params}
    base.whole = _whole("params", pipeline.get("params") or [])
    for name, task in tasks.items():
        base.whole |= _whole(f"tasks.{name}.results", (task.get("taskSpec") or {}).get("results") or [])
        if "matrix" in task:  # its results fan in as arrays, counted by the matrix variables
            base.whole |= {f"tasks.{name}.results.{r}" for r in _results(task)}
            base.exact |= {f"tasks.{name}.matrix.length"}
            base.exact |= {f"tasks.{name}.matrix.{r}.length" for r in _results(task)}
    base.lengths = _lengths(pipeline.get("params") or [], spec.get("params") or [], {})
    base.values |= {f"tasks.{t}.results.{r}" for t, task in tasks.items() for r in _results(task)}
    root = "$.spec.pipelineSpec"
    for i, decl in enumerate(pipeline.get("params") or []):
        _check(decl.get("default"), f"{root}.params[{i}].default", base, "a default sees params and context")
    for section, group in (("tasks", tasks), ("finally", finally_)):
        for i, task in enumerate(group.values()):
            dag = set(tasks) if section == "finally" else None
            _check_task(task, f"{root}.{section}[{i}]", base, dag, workspaces)
    results = _Names()
    results.values |= {f"tasks.{t}.results.{r}" for t, task in tasks.items() for r in _results(task)}
    results.values |= {f"finally.{t}.results.{r}" for t, task in finally_.items() for r in _results(task)}
    for i, result in enumerate(pipeline.get("results") or []):
        _check(
            result.get("value"), f"{root}.results[{i}].value", results, "a pipeline result sees task results"
        )


def _step_names(inner: _Names, steps: list[Any], j: int) -> _Names:
    """What step `j` may refer to: the task's names, its own result paths and earlier steps' results."""
    names = _Names()
    names.exact = inner.exact | set(stepresults.own_paths(steps[j], ""))
    names.values, names.lengths, names.whole = set(inner.values), inner.lengths, set(inner.whole)
    for before in steps[:j]:
        name = stepresults.step_name(before)
        known = {f"steps.{name}.results.{r['name']}": r for r in stepresults.declared(before)}
        names.values |= set(known)
        names.whole |= {ref for ref, decl in known.items() if declared_type(decl) != "string"}
    return names


def _check_task(
    task: dict[str, Any], path: str, base: _Names, dag: set[str] | None, workspaces: set[str]
) -> None:
    """One pipeline task (`dag`: for a finally task, the names of the tasks whose status it sees)."""
    outer = _Names()
    outer.exact = set(base.exact) | {"context.pipelineTask.retries"}
    outer.values = {v for v in base.values if not v.startswith(f"tasks.{task['name']}.")}
    outer.lengths, outer.whole = base.lengths, base.whole
    if dag is not None:
        outer.exact |= {"tasks.status"} | {f"tasks.{t}.{k}" for t in dag for k in ("status", "reason")}
    outside = "the pipeline phase: params, other tasks' results, context.pipeline*, workspaces.W.bound"
    for key in ("params", "when", "workspaces"):
        _check(task.get(key), f"{path}.{key}", outer, outside)
    # a matrixed task's displayName and include names also see each combination's params (matrix.py)
    named = _Names()
    named.exact, named.values, named.lengths, named.whole = (
        outer.exact,
        set(outer.values),
        outer.lengths,
        outer.whole,
    )
    matrix: dict[str, Any] = task["matrix"] if isinstance(task.get("matrix"), dict) else {}
    if matrix:
        given = [*(matrix.get("params") or []), *(task.get("params") or [])]
        given += [p for entry in matrix.get("include") or [] for p in entry.get("params") or []]
        named.values |= {f"params.{p.get('name')}" for p in given if isinstance(p, dict)}
    _check(task.get("displayName"), f"{path}.displayName", named, outside)
    _check(matrix.get("params"), f"{path}.matrix.params", outer, outside)
    for i, entry in enumerate(matrix.get("include") or []):
        _check(entry.get("params"), f"{path}.matrix.include[{i}].params", outer, outside)
        _check(entry.get("name"), f"{path}.matrix.include[{i}].name", named, outside)
    spec = task.get("taskSpec")
    if not isinstance(spec, dict):
        return
    inner = _Names()
    referenced = is_referenced(task)  # a Task by taskRef: nothing from the pipeline propagates into it
    inner.exact = (set() if referenced else set(base.exact)) | _TASK_CONTEXT
    declared_ws = {w["name"] for w in spec.get("workspaces") or []} | (set() if referenced else workspaces)
    inner.exact |= {f"workspaces.{w}.{k}" for w in declared_ws for k in ("path", "bound", "claim", "volume")}
    inner.exact |= {f"results.{r}.path" for r in _results(task)}
    steps: list[Any] = spec.get("steps") or []
    inner.exact |= {f"steps.{d}.exitCode.path" for d in step_dirs([s for s in steps if isinstance(s, dict)])}
    own = {p["name"] for p in spec.get("params") or []} | {p["name"] for p in task.get("params") or []}
    inner.values = (set() if referenced else set(outer.values)) | {f"params.{p}" for p in own}
    inner.values |= {f"inputs.params.{p}" for p in own}
    if not referenced:
        inner.values |= {
            f"inputs.params.{v[len('params.') :]}" for v in base.values if v.startswith("params.")
        }
    inner.whole = (set() if referenced else outer.whole) | _whole("params", spec.get("params") or [])
    inner.whole |= {f"inputs.{w}" for w in inner.whole if w.startswith("params.")}
    outside_lengths = {} if referenced else base.lengths
    inner.lengths = _lengths(spec.get("params") or [], task.get("params") or [], outside_lengths)
    inner.lengths |= {f"inputs.{k}": n for k, n in inner.lengths.items()}
    for i, decl in enumerate(spec.get("params") or []):
        _check(
            decl.get("default"),
            f"{path}.taskSpec.params[{i}].default",
            inner,
            "a default sees params and context",
        )
    inside = "a taskSpec sees its params, results, workspaces, context.task*/taskRun* and what propagates"
    stepresults.check_task(spec, f"{path}.taskSpec")  # where step results are used, and which
    for j, step in enumerate(steps):
        _check(step, f"{path}.taskSpec.steps[{j}]", _step_names(inner, steps, j), inside)
    for key in ("stepTemplate", "sidecars", "volumes", "workspaces"):
        _check(spec.get(key), f"{path}.taskSpec.{key}", inner, inside)
