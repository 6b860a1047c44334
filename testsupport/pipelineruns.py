"""PipelineRuns whose steps are restricted as `sluice compile` restricts a step, for the local
executor to run under `--containers`: the container-isolation tests and the step-overhead benchmark
run the same shape."""

from __future__ import annotations

from typing import Any

from controller.resources import restricted_security_context

POD_USER = 65532  # the pod's uid and gid, as the compiler's podTemplate sets them


def restricted_step(name: str, image: str, **fields: Any) -> dict[str, Any]:
    """A step `name` (its `script` or `command` in `fields`) with a read-only root filesystem, no
    privileges, 1 CPU and 512Mi, and the task's emptyDir mounted writable at /tmp."""
    return {
        "name": name,
        "image": image,
        **fields,
        "securityContext": restricted_security_context(read_only_root=True),
        "computeResources": {"limits": {"cpu": "1", "memory": "512Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def one_task_run(
    name: str,
    task: str,
    steps: list[dict[str, Any]],
    *,
    results: tuple[str, ...] = (),
    workspace: str | None = None,
) -> dict[str, Any]:
    """A PipelineRun `name` of one task `task` running `steps` (from `restricted_step`) as uid and
    gid 65532, with the emptyDir they mount at /tmp, the `results` it declares and, when
    `workspace` is given, an emptyDir workspace of that name (owned by the pod's group, fsGroup)."""
    task_spec: dict[str, Any] = {"steps": steps, "volumes": [{"name": "tmp", "emptyDir": {}}]}
    pipeline_task: dict[str, Any] = {"name": task, "taskSpec": task_spec}
    pipeline_spec: dict[str, Any] = {"tasks": [pipeline_task]}
    pod_security = {"runAsUser": POD_USER, "runAsGroup": POD_USER}
    spec: dict[str, Any] = {"pipelineSpec": pipeline_spec}
    if results:
        task_spec["results"] = [{"name": r} for r in results]
    if workspace is not None:
        task_spec["workspaces"] = [{"name": workspace}]
        pipeline_task["workspaces"] = [{"name": workspace, "workspace": workspace}]
        pipeline_spec["workspaces"] = [{"name": workspace}]
        spec["workspaces"] = [{"name": workspace, "emptyDir": {}}]
        pod_security["fsGroup"] = POD_USER
    spec["taskRunTemplate"] = {"podTemplate": {"securityContext": pod_security}}
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": name}, "spec": spec}


def inline_taskrun(
    name: str,
    steps: list[dict[str, Any]],
    *,
    results: tuple[str, ...] = (),
    workspaces: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A TaskRun `name` of an inline task running `steps` and declaring `results`; `workspaces`
    binds each named workspace of the task to its volume source (e.g. `{"emptyDir": {}}`)."""
    task_spec: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    if workspaces:
        spec["workspaces"] = [{"name": workspace, **source} for workspace, source in workspaces.items()]
        task_spec["workspaces"] = [{"name": workspace} for workspace in workspaces]
    if results:
        task_spec["results"] = [{"name": r} for r in results]
    task_spec["steps"] = steps
    spec["taskSpec"] = task_spec
    return {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": name}, "spec": spec}
