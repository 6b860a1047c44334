"""References by name, resolved the one way: `pipelineRef`, `taskRef` and step `ref` to the embedded
form the executor runs (`pipelineSpec`, `taskSpec`, inline steps), from the documents of the input.

Nothing is fetched: a resolver (git, hub, bundles, http, cluster), a bundle, a ClusterTask or a
custom task is refused with its JSON path and why, as is a name the input does not hold. Each
inlined part is recorded in a `Provenance`, so an error the executor reports later against the
resolved PipelineRun (`$.spec.pipelineSpec.tasks[0].taskSpec.steps[1]...`) is shown at the file,
line and column of the document that wrote it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from controller.executors.local.documents import TEKTON, Document, Documents
from controller.executors.local.params import TASK_LABEL
from controller.executors.local.stepactions import inline_step_action

# what each remote resolver would need, for the refusal
RESOLVERS = {
    "git": "clones a Git repository",
    "hub": "downloads from Tekton Hub / Artifact Hub",
    "bundles": "pulls an OCI bundle from a registry",
    "http": "downloads over HTTP",
    "cluster": "reads the object from a cluster's namespace",
}


@dataclass
class Provenance:
    """Where each part of a resolved run came from: (path in the run, document, path in it)."""

    parts: list[tuple[str, Document, str]] = field(default_factory=list)

    def add(self, at: str, doc: Document, path: str) -> None:
        self.parts.append((at, doc, path))

    def locate(self, message: str) -> str:
        """`message` (`$.json.path: why`) with its path moved to the document that wrote it:
        `FILE:LINE:COL: $.path: why`; other messages unchanged."""
        path, sep, rest = message.partition(": ")
        if not sep or not path.startswith("$") or " " in path:
            return message
        for at, doc, inner in sorted(self.parts, key=lambda p: -len(p[0])):
            if path == at or path.startswith(at + ".") or path.startswith(at + "["):
                return f"{doc.where(inner + path[len(at) :])}: {rest}"
        return message


def _refusal(ref: Any, doc: Document, path: str, kind: str) -> None:
    """Refuse what needs a cluster or network: a resolver, a bundle, a ClusterTask, a custom task."""
    if not isinstance(ref, dict):
        raise doc.error(path, "expected an object with a name")
    resolver = ref.get("resolver")
    if resolver is not None:
        why = RESOLVERS.get(str(resolver), "is a remote resolution the local executor cannot do")
        raise doc.error(
            f"{path}.resolver",
            f"the {resolver} resolver {why}: it needs a cluster or network; put the {kind} in the "
            "input and refer to it by name",
        )
    if "bundle" in ref:
        raise doc.error(f"{path}.bundle", "a Tekton bundle is pulled from a registry: it needs the network")
    api, ref_kind = ref.get("apiVersion"), ref.get("kind", kind)
    if isinstance(api, str) and not api.startswith(TEKTON):
        raise doc.error(
            f"{path}.apiVersion", f"custom task {api}/{ref_kind} needs its controller on a cluster"
        )
    if ref_kind == "ClusterTask":
        raise doc.error(f"{path}.kind", "ClusterTask was removed in Tekton v1; put a Task in the input")
    if ref_kind != kind:
        raise doc.error(f"{path}.kind", f"expected {kind}, not {ref_kind!r}")
    if not isinstance(ref.get("name"), str) or not ref["name"]:
        raise doc.error(f"{path}.name", f"a {kind} reference needs a name")


def find(documents: Documents, kind: str, ref: Any, doc: Document, path: str) -> Document:
    """The document a `*Ref` names, or a refusal naming the path and what the input holds."""
    _refusal(ref, doc, path, kind)
    found = documents.find(kind, ref["name"])
    if found is None:
        held = documents.names(kind)
        listing = f"the input holds {', '.join(held)}" if held else f"the input holds no {kind}"
        raise doc.error(f"{path}.name", f"no {kind} named {ref['name']!r}: {listing}")
    return found


def spec_of(doc: Document) -> dict[str, Any]:
    spec = doc.body.get("spec")
    if not isinstance(spec, dict):
        raise doc.error("$.spec", f"a {doc.kind} needs a spec")
    return copy.deepcopy(spec)


def inline_task_spec(
    documents: Documents,
    spec: Any,
    at: str,
    doc: Document,
    path: str,
    provenance: Provenance,
    given: dict[str, Any] | None = None,
) -> Any:
    """A taskSpec with every step `ref` replaced by its StepAction (other steps unchanged);
    `given`: the param values a TaskRun gives the task, when known before it runs."""
    if not isinstance(spec, dict):
        return spec
    api = spec.get("apiVersion")
    if isinstance(api, str) and not api.startswith(TEKTON):
        raise doc.error(f"{path}.apiVersion", f"custom task {api} needs its controller on a cluster")
    steps: list[Any] = spec["steps"] if isinstance(spec.get("steps"), list) else []
    for j, step in enumerate(steps):
        if isinstance(step, dict) and "ref" in step:
            action = find(documents, "StepAction", step["ref"], doc, f"{path}.steps[{j}].ref")
            steps[j] = inline_step_action(step, action, doc, f"{path}.steps[{j}]", spec.get("params"), given)
            provenance.add(f"{at}.steps[{j}]", action, "$.spec")
    return spec


def _inline_tasks(
    documents: Documents, pipeline: dict[str, Any], at: str, doc: Document, path: str, provenance: Provenance
) -> None:
    for section in ("tasks", "finally"):
        tasks = pipeline.get(section)
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            if not isinstance(task, dict):
                continue
            task_at, task_path = f"{at}.{section}[{i}]", f"{path}.{section}[{i}]"
            if "taskRef" in task:
                if "taskSpec" in task:
                    raise doc.error(task_path, "a task has taskRef or taskSpec, not both")
                source = find(documents, "Task", task.pop("taskRef"), doc, f"{task_path}.taskRef")
                task["taskSpec"] = spec_of(source)
                # marked as referenced: Tekton propagates nothing from the pipeline into it
                labels = task["taskSpec"].setdefault("metadata", {}).setdefault("labels", {})
                labels[TASK_LABEL] = source.name
                provenance.add(f"{task_at}.taskSpec", source, "$.spec")
                task["taskSpec"] = inline_task_spec(
                    documents, task["taskSpec"], f"{task_at}.taskSpec", source, "$.spec", provenance
                )
            elif "pipelineRef" in task or "pipelineSpec" in task:
                key = "pipelineRef" if "pipelineRef" in task else "pipelineSpec"
                raise doc.error(
                    f"{task_path}.{key}", "pipelines in pipelines (alpha in Tekton) are not run locally"
                )
            else:
                spec, where = task.get("taskSpec"), f"{task_path}.taskSpec"
                task["taskSpec"] = inline_task_spec(
                    documents, spec, f"{task_at}.taskSpec", doc, where, provenance
                )


def resolve_pipelinerun(documents: Documents, doc: Document) -> tuple[dict[str, Any], Provenance]:
    """The PipelineRun of `doc` with its pipeline and tasks embedded."""
    run = copy.deepcopy(doc.body)
    provenance = Provenance()
    provenance.add("$", doc, "$")
    spec = run.get("spec")
    if not isinstance(spec, dict):
        raise doc.error("$.spec", "a PipelineRun needs a spec")
    if "pipelineRef" in spec:
        if "pipelineSpec" in spec:
            raise doc.error("$.spec", "a PipelineRun has pipelineRef or pipelineSpec, not both")
        source = find(documents, "Pipeline", spec.pop("pipelineRef"), doc, "$.spec.pipelineRef")
        spec["pipelineSpec"] = spec_of(source)
        provenance.add("$.spec.pipelineSpec", source, "$.spec")
        _inline_tasks(documents, spec["pipelineSpec"], "$.spec.pipelineSpec", source, "$.spec", provenance)
        run.setdefault("metadata", {}).setdefault("labels", {}).setdefault("tekton.dev/pipeline", source.name)
    elif isinstance(spec.get("pipelineSpec"), dict):
        _inline_tasks(
            documents, spec["pipelineSpec"], "$.spec.pipelineSpec", doc, "$.spec.pipelineSpec", provenance
        )
    return run, provenance


def resolve_task_of(
    documents: Documents, doc: Document, provenance: Provenance
) -> tuple[dict[str, Any], str]:
    """A TaskRun's Task, embedded (steps' refs inlined), and the Task's name ('' when embedded)."""
    spec = doc.body.get("spec")
    if not isinstance(spec, dict):
        raise doc.error("$.spec", "a TaskRun needs a spec")
    if "taskRef" in spec:
        if "taskSpec" in spec:
            raise doc.error("$.spec", "a TaskRun has taskRef or taskSpec, not both")
        source = find(documents, "Task", spec["taskRef"], doc, "$.spec.taskRef")
        at = "$.spec.pipelineSpec.tasks[0].taskSpec"
        provenance.add(at, source, "$.spec")
        return inline_task_spec(documents, spec_of(source), at, source, "$.spec", provenance), source.name
    if not isinstance(spec.get("taskSpec"), dict):
        raise doc.error("$.spec", "a TaskRun needs taskRef or taskSpec")
    task_spec = copy.deepcopy(spec["taskSpec"])
    at = "$.spec.pipelineSpec.tasks[0].taskSpec"
    provenance.add(at, doc, "$.spec.taskSpec")
    given = {str(p.get("name")): p.get("value") for p in spec.get("params") or [] if isinstance(p, dict)}
    return inline_task_spec(documents, task_spec, at, doc, "$.spec.taskSpec", provenance, given), ""
