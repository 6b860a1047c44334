"""Param values as Tekton computes them, for a pipeline and for each of its tasks.

Pipeline: the PipelineRun's values over the pipeline's defaults; a default may use other params
and the `context.pipelineRun`/`context.pipeline` variables; a PipelineRun param the embedded
pipeline does not declare is still a value (Tekton propagates it).

Task (docs/pipelineruns.md "Propagated Parameters", "Scope and Precedence"): into an embedded
taskSpec every pipeline param propagates without being declared or passed; a value the pipeline
task passes wins over it (inner scope), and it wins over the task's own default (the runtime value
beats a default). A param the pipeline task passes without the task declaring it is a value too.
"""

from __future__ import annotations

from typing import Any

from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.typed import typed_param, value_type
from controller.executors.local.variables import (
    Scope,
    Value,
    VariableError,
    references,
    substitute_value,
)

# Tekton's label for a TaskRun's Task: references.py puts it on a taskSpec inlined from a `taskRef`,
# which Tekton does not propagate pipeline params, results, workspaces or context into.
TASK_LABEL = "tekton.dev/task"


PIPELINE_LABEL = "tekton.dev/pipeline"  # on a PipelineRun whose pipeline came from a `pipelineRef`


def pipeline_is_referenced(run: dict[str, Any]) -> bool:
    """Whether the run's pipeline came from a `pipelineRef`: run params and workspaces it does not
    declare do not propagate into it."""
    return PIPELINE_LABEL in ((run.get("metadata") or {}).get("labels") or {})


def is_referenced(task: dict[str, Any]) -> bool:
    """Whether the pipeline task's spec came from a `taskRef` (not embedded by its author)."""
    spec = task.get("taskSpec") or {}
    return TASK_LABEL in ((spec.get("metadata") or {}).get("labels") or {})


def resolve_defaults(
    decls: list[dict[str, Any]],
    known: dict[str, Any],
    extra: dict[str, Value],
    where: str,
    forward: bool = False,
) -> dict[str, Any]:
    """The declared params' values: `known` ones as given, the others their defaults, which may
    refer to other params (in any order, as Tekton resolves them recursively) and to `extra`
    variables (context); `forward`: as `Scope.forward` (a StepAction's params)."""
    values: dict[str, Any] = dict(known)
    pending = {d["name"]: (i, d) for i, d in enumerate(decls) if d["name"] not in known}
    while pending:
        progressed = False
        for name, (i, decl) in list(pending.items()):
            default = decl.get("default")
            needed = [r[len("params.") :] for r in references(default) if r.startswith("params.")]
            bases = [n.split("[", 1)[0] for n in needed]
            if any(b in pending for b in bases):
                continue
            known_values = {f"params.{k}": v for k, v in values.items() if v is not None}
            scope = Scope({**extra, **known_values}, ("params",), (), f"{where}[{i}].default", forward)
            try:
                values[name] = substitute_value(default, scope)
            except VariableError as exc:
                raise UnsupportedError(str(exc)) from None
            del pending[name]
            progressed = True
        if not progressed:
            name, (i, _) = next(iter(pending.items()))
            raise UnsupportedError(f"{where}[{i}].default: param {name!r} refers to itself in a cycle")
    return values


def pipeline_params(run: dict[str, Any], context: dict[str, Value]) -> dict[str, Value]:
    """The PipelineRun's params over the pipeline's defaults, type-checked."""
    spec = run["spec"]
    given: dict[str, Any] = {p["name"]: p.get("value") for p in spec.get("params") or []}
    decls = list(spec["pipelineSpec"].get("params") or [])
    declared = {d["name"] for d in decls}
    where = "$.spec.pipelineSpec.params"
    values = resolve_defaults(decls, {k: v for k, v in given.items() if k in declared}, context, where)
    out: dict[str, Value] = {}
    for i, decl in enumerate(decls):
        out[decl["name"]] = typed_param(values[decl["name"]], decl, f"{where}[{i}] ({decl['name']})")
    for i, param in enumerate(spec.get("params") or []):
        if param["name"] not in declared and not pipeline_is_referenced(run):  # propagated, as in Tekton
            value = param.get("value")
            out[param["name"]] = typed_param(value, {"type": value_type(value)}, f"$.spec.params[{i}]")
    return out


def task_params(
    task: dict[str, Any], pscope: Scope, where: str, task_context: dict[str, Value]
) -> dict[str, Value]:
    """A pipeline task's param values: what it passes (resolved in the pipeline phase), the
    pipeline's params propagated into its embedded spec, its own defaults (which may use the
    context variables, the task's too: Tekton applies them after the params)."""
    given: dict[str, Value] = {}
    for i, p in enumerate(task.get("params") or []):
        pscope_at = Scope(pscope.values, pscope.owned, pscope.pending, f"{where}.params[{i}].value")
        given[p["name"]] = substitute_value(p.get("value"), pscope_at)
    propagated = {
        ref[len("params.") :]: value
        for ref, value in pscope.values.items()
        if ref.startswith("params.") and "[" not in ref and not is_referenced(task)
    }
    decls = list(task["taskSpec"].get("params") or [])
    context = {k: v for k, v in pscope.values.items() if k.startswith("context.")} | task_context
    known = {**{d["name"]: propagated[d["name"]] for d in decls if d["name"] in propagated}, **given}
    values = resolve_defaults(decls, known, context, f"{where}.taskSpec.params")
    params = dict(propagated)
    for i, decl in enumerate(decls):
        name = decl["name"]
        params[name] = typed_param(values[name], decl, f"{where}.taskSpec.params[{i}] ({name})")
    declared = {d["name"] for d in decls}
    params.update({k: v for k, v in given.items() if k not in declared})
    return params
