"""Pipeline and task workspaces as local folders.

`bind_workspaces` gives each workspace a PipelineRun binds a folder (a run's own, a claim's under
$SLUICE_HOME/volumes, or one filled with ConfigMap / Secret keys); `task_workspaces` maps a
pipeline task's workspaces onto them (subPath, per-task emptyDirs); `propagate_workspaces` declares
what an embedded task spec uses without declaring it, as Tekton does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.executors.local.objects import FILLED_KINDS, ClusterObjects, fill_workspace
from controller.executors.local.params import is_referenced, pipeline_is_referenced
from controller.executors.local.secrets import LocalSecrets
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import Scope, references, substitute


@dataclass
class Workspace:
    """Where a pipeline workspace lives locally; `path` None when an optional one is unbound."""

    name: str
    kind: str  # volumeClaimTemplate | persistentVolumeClaim | emptyDir | secret | unbound
    path: Path | None
    claim: str = ""


def bind_workspaces(
    run: dict[str, Any],
    run_dir: Path,
    home: Path,
    secrets: LocalSecrets,
    secret_dir: Path,
    objects: ClusterObjects | None = None,
) -> dict[str, Workspace]:
    """A folder per bound pipeline workspace (configMap, secret and projected ones filled with their
    keys from the input's ConfigMaps and from local secrets)."""
    bindings = {b["name"]: b for b in run["spec"].get("workspaces") or []}
    positions = {b["name"]: i for i, b in enumerate(run["spec"].get("workspaces") or [])}
    found: dict[str, Workspace] = {}
    declared = list(run["spec"]["pipelineSpec"].get("workspaces") or [])
    names = {d["name"] for d in declared}
    # a binding the embedded pipeline does not declare propagates into it (Tekton's propagated workspaces)
    if not pipeline_is_referenced(run):
        declared += [{"name": name} for name in bindings if name not in names]
    for decl in declared:
        name = decl["name"]
        binding = bindings.pop(name, None)
        if binding is None:
            if not decl.get("optional"):
                raise UnsupportedError(f"$.spec.workspaces: pipeline workspace {name!r} is not bound")
            found[name] = Workspace(name, "unbound", None)
            continue
        sub = binding.get("subPath", "")
        index = positions[name]
        if "volumeClaimTemplate" in binding:
            path, kind, claim = run_dir / "workspaces" / name, "volumeClaimTemplate", f"pvc-{name}"
        elif "persistentVolumeClaim" in binding:
            claim = binding["persistentVolumeClaim"].get("claimName", name)
            path, kind = home / "volumes" / claim, "persistentVolumeClaim"
        elif "emptyDir" in binding:
            path, kind, claim = run_dir / "workspaces" / name, "emptyDir", ""
        elif kind := next((k for k in FILLED_KINDS if k in binding), ""):
            # files of ConfigMap / Secret keys, in the run's private folder (removed when it ends)
            path, claim = secret_dir / name, ""
            fill_workspace(binding, path, objects or ClusterObjects(), secrets, f"$.spec.workspaces[{index}]")
        else:
            raise UnsupportedError(
                f"$.spec.workspaces: binding of {name!r} has no volume the local executor knows"
            )
        if sub:
            path = path / sub
        path.mkdir(parents=True, exist_ok=True)
        found[name] = Workspace(name, kind, path, claim)
    if bindings:
        raise UnsupportedError(
            f"$.spec.workspaces: {sorted(bindings)[0]!r} is not a workspace of the pipeline"
        )
    return found


def propagate_workspaces(task: dict[str, Any], pipeline_workspaces: set[str]) -> dict[str, Any]:
    """`task` with the pipeline workspaces its embedded spec uses without declaring them declared
    and bound under their own names (Tekton's propagated workspaces; only for embedded specs)."""
    spec = task["taskSpec"]
    if is_referenced(task):
        return task
    declared = {d["name"] for d in spec.get("workspaces") or []}
    refs = references([spec.get(k) for k in ("steps", "stepTemplate", "sidecars")])
    used = {r.split(".")[1] for r in refs if r.startswith("workspaces.") and r.count(".") >= 2}
    implicit = sorted((used & pipeline_workspaces) - declared)
    if not implicit:
        return task
    bound = {b["name"] for b in task.get("workspaces") or []}
    return {
        **task,
        "workspaces": [*(task.get("workspaces") or []), *({"name": w} for w in implicit if w not in bound)],
        "taskSpec": {
            **spec,
            "workspaces": [*(spec.get("workspaces") or []), *({"name": w} for w in implicit)],
        },
    }


def task_workspaces(
    pipeline: Mapping[str, Workspace], task: dict[str, Any], task_dir: Path, where: str, pscope: Scope
) -> dict[str, tuple[Workspace, Path | None]]:
    """Each workspace the task declares -> (the pipeline workspace bound to it, its folder for this
    task); an unbound optional one -> (an unbound Workspace, None)."""
    bound = {b["name"]: b for b in task.get("workspaces") or []}
    out: dict[str, tuple[Workspace, Path | None]] = {}
    for decl in task["taskSpec"].get("workspaces") or []:
        name = decl["name"]
        binding = bound.pop(name, None)
        # a binding without `workspace` maps the pipeline workspace of the same name (Tekton's default)
        target = binding.get("workspace", name) if binding else None
        pipeline_ws = pipeline.get(target) if target else None
        if binding and pipeline_ws is None:
            raise UnsupportedError(f"{where}.workspaces: {target!r} is not a pipeline workspace")
        if pipeline_ws is None or pipeline_ws.path is None:
            if not decl.get("optional"):
                raise UnsupportedError(f"{where}: workspace {name!r} of the task is not bound")
            out[name] = (Workspace(name, "unbound", None), None)
            continue
        path = pipeline_ws.path
        if pipeline_ws.kind == "emptyDir":  # an emptyDir belongs to one pod: never shared between tasks
            path = task_dir / "emptydir" / pipeline_ws.name
        if binding and binding.get("subPath"):  # it may name params: `subPath: $(params.dir)`
            path = path / _sub_path(substitute(binding["subPath"], pscope), f"{where}.workspaces")
        path.mkdir(parents=True, exist_ok=True)
        out[name] = (pipeline_ws, path)
    if bound:
        raise UnsupportedError(f"{where}.workspaces: the task declares no workspace {sorted(bound)[0]!r}")
    return out


def _sub_path(value: Any, where: str) -> str:
    """A workspace binding's subPath: relative, inside the workspace (as Kubernetes requires)."""
    if not isinstance(value, str) or value.startswith("/") or ".." in value.split("/"):
        raise UnsupportedError(f"{where}: subPath {value!r} must be a relative path without '..'")
    return value
