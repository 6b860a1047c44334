"""A TaskRun, run by the same interpreter as a PipelineRun: wrapped as a one-task PipelineRun.

The wrapper adds no Tekton rule of its own; it maps each TaskRun field to the PipelineRun field
with the same meaning: `params` and `workspaces` are passed to the one pipeline task (bound to
pipeline workspaces of the same names), `timeout` and `retries` become the task's, the pod
template and service account the run's `taskRunTemplate`, `stepSpecs` override the steps'
`computeResources` (`sidecarSpecs` the sidecars'). The task's results are the run's results
(its outputs), and the TaskRun's own name is `$(context.taskRun.name)`.
"""

from __future__ import annotations

from typing import Any

from controller.executors.local.documents import Document, Documents
from controller.executors.local.references import Provenance, resolve_task_of

# TaskRun spec fields and what becomes of them (anything else is refused with its path)
FIELDS = (
    "params",
    "taskRef",
    "taskSpec",
    "workspaces",
    "timeout",
    "retries",
    "podTemplate",
    "serviceAccountName",
    "stepSpecs",
    "sidecarSpecs",
    "computeResources",
)
WRAPPED = "$.spec.pipelineSpec.tasks[0]"  # where the TaskRun's task sits in the wrapper


TASKRUN_LABEL = "tekton.dev/taskRun"  # Tekton's own label for a TaskRun's name


def wrap_taskrun(documents: Documents, doc: Document) -> tuple[dict[str, Any], Provenance, str]:
    """(the one-task PipelineRun, where its parts came from, the pipeline task's name)."""
    spec = doc.body.get("spec")
    if not isinstance(spec, dict):
        raise doc.error("$.spec", "a TaskRun needs a spec")
    for key in spec:
        if key not in FIELDS:
            why = (
                "a TaskRun created cancelled does not run"
                if key == "status"
                else "Tekton field not supported by the local executor"
            )
            raise doc.error(f"$.spec.{key}", why)
    provenance = Provenance()
    task_spec, task_name = resolve_task_of(documents, doc, provenance)
    _override_steps(task_spec, spec, doc)
    name = task_name or doc.name
    task: dict[str, Any] = {"name": name, "taskSpec": task_spec}
    provenance.add(f"{WRAPPED}.params", doc, "$.spec.params")
    provenance.add(f"{WRAPPED}.workspaces", doc, "$.spec.workspaces")
    provenance.add(f"{WRAPPED}.timeout", doc, "$.spec.timeout")
    provenance.add(f"{WRAPPED}.retries", doc, "$.spec.retries")
    provenance.add("$.spec.taskRunTemplate", doc, "$.spec")
    provenance.add("$.spec.workspaces", doc, "$.spec.workspaces")
    provenance.add("$.metadata", doc, "$.metadata")
    provenance.add("$.spec.params", doc, "$.spec.params")
    if spec.get("params"):
        task["params"] = spec["params"]
    bindings = spec.get("workspaces") or []
    if not isinstance(bindings, list) or not all(isinstance(b, dict) and "name" in b for b in bindings):
        raise doc.error("$.spec.workspaces", "expected a list of bindings, each with a name")
    if bindings:
        task["workspaces"] = [{"name": b.get("name"), "workspace": b.get("name")} for b in bindings]
    if bindings and not task_name:  # an embedded taskSpec gets the TaskRun's workspaces (propagated)
        declared = {w.get("name") for w in task_spec.get("workspaces") or [] if isinstance(w, dict)}
        missing = [{"name": b["name"]} for b in bindings if b["name"] not in declared]
        if missing:
            task_spec["workspaces"] = [*(task_spec.get("workspaces") or []), *missing]
    for key in ("timeout", "retries"):
        if key in spec:
            task[key] = spec[key]
    template = {k: spec[k] for k in ("serviceAccountName", "podTemplate") if k in spec}
    meta = doc.body.get("metadata") or {}
    pipeline: dict[str, Any] = {"tasks": [task]}
    if bindings:
        pipeline["workspaces"] = [{"name": b.get("name")} for b in bindings]
    results = _results(task_spec, name)
    if results:
        pipeline["results"] = results
    run_spec: dict[str, Any] = {"pipelineSpec": pipeline}
    if bindings:
        run_spec["workspaces"] = bindings
    if template:
        run_spec["taskRunTemplate"] = template
    run = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {
            **{k: meta[k] for k in ("name", "namespace", "annotations") if k in meta},
            # marks the run as a TaskRun's: a result it did not write is just not reported
            "labels": {**(meta.get("labels") or {}), TASKRUN_LABEL: doc.name},
        },
        "spec": run_spec,
    }
    return run, provenance, name


def _results(task_spec: Any, task: str) -> list[dict[str, Any]]:
    """The task's results as the run's: Tekton reports a TaskRun's results as its own."""
    found = []
    for result in task_spec.get("results") or [] if isinstance(task_spec, dict) else []:
        if not isinstance(result, dict) or not isinstance(result.get("name"), str):
            continue
        kind = result.get("type", "string")
        whole = "[*]" if kind in ("array", "object") else ""
        value = f"$(tasks.{task}.results.{result['name']}{whole})"
        found.append({"name": result["name"], **({"type": kind} if whole else {}), "value": value})
    return found


def _override_steps(task_spec: Any, spec: dict[str, Any], doc: Document) -> None:
    """`stepSpecs` and `sidecarSpecs`: each names a step (a sidecar) of the task and overrides its
    `computeResources`, as Tekton does; the TaskRun's own `computeResources` apply to every step."""
    if "computeResources" in spec:
        for step in task_spec.get("steps") or []:
            step["computeResources"] = spec["computeResources"]
    for key, section in (("stepSpecs", "steps"), ("sidecarSpecs", "sidecars")):
        overrides = spec.get(key) or []
        for i, override in enumerate(overrides if isinstance(overrides, list) else [overrides]):
            where = f"$.spec.{key}[{i}]"
            if not isinstance(override, dict) or set(override) - {"name", "computeResources"}:
                raise doc.error(where, f"a {key[:-1]} has a name and computeResources")
            named = [s for s in task_spec.get(section) or [] if s.get("name") == override.get("name")]
            if not named:
                raise doc.error(f"{where}.name", f"the task has no {section[:-1]} {override.get('name')!r}")
            named[0]["computeResources"] = override.get("computeResources")
