"""`check_pipelinerun`: the whole of a Tekton v1 PipelineRun checked before anything runs.

Beyond the fields each object may have (`tekton.FIELDS`), what Tekton's own validation refuses
(duplicate task names, timeouts that do not add up, a matrix too large, retries with onError:
continue) and what cannot run here (a taskRef, a volume a host process cannot mount, a sidecar
under --containers, an image's entrypoint without --containers), each with its JSON path.
"""

from __future__ import annotations

import re
from typing import Any

from controller.executors.local import matrix
from controller.executors.local.tekton import (
    HOST_TMP,
    UnsupportedError,
    check_fields,
    check_items,
    timeout_seconds,
)
from controller.units import parse_quantity


def _check_volumes(spec: dict[str, Any], steps: list[dict[str, Any]], path: str, containers: bool) -> None:
    """A task's `volumes` (emptyDir only) and its steps' `volumeMounts` of them. Host processes cannot
    mount: there a volume may be mounted only at /tmp, which becomes the step's TMPDIR."""
    names: set[Any] = set()
    volumes = spec.get("volumes") or []
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        where = f"{path}.taskSpec.volumes[{i}]"
        if isinstance(volume, dict) and not isinstance(volume.get("emptyDir"), dict):
            kinds = sorted(set(volume) - {"name"})
            raise UnsupportedError(f"{where}: only emptyDir volumes can run locally, not {', '.join(kinds)}")
    for i, volume in enumerate(check_items(spec.get("volumes"), "volume", f"{path}.taskSpec.volumes")):
        where = f"{path}.taskSpec.volumes[{i}]"
        check_fields(volume["emptyDir"], "emptyDir", f"{where}.emptyDir")
        size = volume["emptyDir"].get("sizeLimit")
        try:
            if size is not None and parse_quantity(size) < 0:
                raise ValueError(f"{size!r} is below 0")
        except ValueError as exc:
            raise UnsupportedError(f"{where}.emptyDir.sizeLimit: {exc}") from None
        if volume.get("name") in names:
            raise UnsupportedError(f"{where}.name: duplicate volume name {volume.get('name')!r}")
        names.add(volume.get("name"))
    template = spec.get("stepTemplate") or {}
    owners = [(template, f"{path}.taskSpec.stepTemplate")]
    owners += [(step, f"{path}.taskSpec.steps[{j}]") for j, step in enumerate(steps)]
    for owner, where in owners:
        for k, mount in enumerate(
            check_items(owner.get("volumeMounts"), "volumeMount", f"{where}.volumeMounts")
        ):
            at = f"{where}.volumeMounts[{k}]"
            if mount.get("name") not in names:
                raise UnsupportedError(f"{at}.name: the task has no volume {mount.get('name')!r}")
            mount_path = mount.get("mountPath")
            if not isinstance(mount_path, str) or not mount_path.startswith("/"):
                raise UnsupportedError(f"{at}.mountPath: an absolute path is needed")
            sub = mount.get("subPath", "")
            if not isinstance(sub, str) or sub.startswith("/") or ".." in sub.split("/"):
                raise UnsupportedError(f"{at}.subPath: a relative path without '..' is needed")
            if not containers and mount_path.rstrip("/") != HOST_TMP:
                raise UnsupportedError(
                    f"{at}.mountPath: host processes cannot mount a volume at {mount_path!r}; "
                    f"only {HOST_TMP} is honoured (as the step's TMPDIR): run with --containers"
                )


def _check_task(task: dict[str, Any], path: str, containers: bool = False) -> None:
    check_fields(task, "pipelineTask", path)
    if "taskSpec" not in task:
        raise UnsupportedError(f"{path}: only embedded taskSpec tasks can run locally (no taskRef)")
    for i, when in enumerate(check_items(task.get("when"), "when", f"{path}.when")):
        if when.get("operator") not in ("in", "notin"):
            raise UnsupportedError(f"{path}.when[{i}].operator: {when.get('operator')!r} is not in|notin")
    check_items(task.get("params"), "param", f"{path}.params")
    if task.get("onError", "stopAndFail") not in ("continue", "stopAndFail"):
        raise UnsupportedError(f"{path}.onError: {task['onError']!r} is not continue or stopAndFail")
    if task.get("onError") == "continue" and task.get("retries"):
        raise UnsupportedError(f"{path}.onError: Tekton does not allow retries with onError: continue")
    if "matrix" in task:
        _check_matrix(task, f"{path}.matrix")
    check_items(task.get("workspaces"), "taskWorkspaceBinding", f"{path}.workspaces")
    spec = check_fields(task["taskSpec"], "taskSpec", f"{path}.taskSpec")
    if "metadata" in spec:
        check_fields(spec["metadata"], "taskMetadata", f"{path}.taskSpec.metadata")
    check_items(spec.get("params"), "paramSpec", f"{path}.taskSpec.params")
    check_items(spec.get("results"), "resultSpec", f"{path}.taskSpec.results")
    check_items(spec.get("workspaces"), "taskWorkspace", f"{path}.taskSpec.workspaces")
    template: dict[str, Any] = {}
    if "stepTemplate" in spec:
        template = check_fields(spec["stepTemplate"], "stepTemplate", f"{path}.taskSpec.stepTemplate")
        _check_env(template.get("env"), f"{path}.taskSpec.stepTemplate.env")
    steps = check_items(spec.get("steps"), "step", f"{path}.taskSpec.steps")
    if not steps:
        raise UnsupportedError(f"{path}.taskSpec.steps: a task needs at least one step")
    for j, step in enumerate(steps):
        where = f"{path}.taskSpec.steps[{j}]"
        _check_env(step.get("env"), f"{where}.env")
        for k, source in enumerate(check_items(step.get("envFrom"), "envFromSource", f"{where}.envFrom")):
            refs = [kind for kind in ("configMapRef", "secretRef") if kind in source]
            if len(refs) != 1:
                raise UnsupportedError(f"{where}.envFrom[{k}]: one of configMapRef or secretRef")
            check_fields(source[refs[0]], refs[0], f"{where}.envFrom[{k}].{refs[0]}")
        if "script" in step and "command" in step:
            raise UnsupportedError(f"{where}: a step has either script or command, not both")
        if "script" not in step and "command" not in step and "command" not in template and not containers:
            raise UnsupportedError(
                f"{where}: no command or script; an image's entrypoint runs only in its image: "
                "use --containers"
            )
        on_error = step.get("onError", "stopAndFail")
        if on_error not in ("continue", "stopAndFail") and not _is_param_ref(on_error):
            raise UnsupportedError(
                f"{where}.onError: {on_error!r} is not continue, stopAndFail or a $(params.x)"
            )
    _check_volumes(spec, steps, path, containers)
    for j, car in enumerate(check_items(spec.get("sidecars"), "sidecar", f"{path}.taskSpec.sidecars")):
        volumes = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)}
        _check_sidecar(car, f"{path}.taskSpec.sidecars[{j}]", volumes, containers)


def _check_matrix(task: dict[str, Any], path: str) -> None:
    """Tekton's validation of a matrix: unique param names, none also in `params`, at most
    MAX_COMBINATIONS TaskRuns (counted here when the values are literal, else when it fans out)."""
    spec = check_fields(task["matrix"], "matrix", path)
    params = check_items(spec.get("params"), "param", f"{path}.params")
    names = [p.get("name") for p in params]
    for i, param in enumerate(params):
        value = param.get("value")
        whole_ref = isinstance(value, str) and re.fullmatch(r"\$\([^()\s]+\)", value) is not None
        if not whole_ref and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise UnsupportedError(
                f"{path}.params[{i}].value: a matrix param is an array of strings or a whole $(...) array"
            )
    for i, entry in enumerate(check_items(spec.get("include"), "matrixInclude", f"{path}.include")):
        check_items(entry.get("params"), "param", f"{path}.include[{i}].params")
    if not names and not spec.get("include"):
        raise UnsupportedError(f"{path}: a matrix needs params or include")
    for i, name in enumerate(names):
        if names.count(name) > 1:
            raise UnsupportedError(f"{path}.params[{i}].name: {name!r} is given twice")
        if name in {p.get("name") for p in task.get("params") or []}:
            raise UnsupportedError(
                f"{path}.params[{i}].name: {name!r} is also in params; a param goes in one"
            )
    n = matrix.count(spec)
    if n is not None and n > matrix.MAX_COMBINATIONS:
        raise UnsupportedError(matrix.too_many(n, path))


def _check_sidecar(car: dict[str, Any], where: str, volumes: set[Any], containers: bool) -> None:
    """A sidecar: a host process beside the steps, or with `containers` a container of their pod
    (pods.py); its readiness probe is checked where the kubelet would check it."""
    _check_env(car.get("env"), f"{where}.env")
    for k, mount in enumerate(check_items(car.get("volumeMounts"), "volumeMount", f"{where}.volumeMounts")):
        # a workspace's volume (how Tekton shares a workspace with a sidecar) or, in a pod, the task's
        # own volumes: a host process already sees the workspace's folder at its path, and only there
        workspace = re.fullmatch(r"\$\(workspaces\.([^.()]+)\.path\)", str(mount.get("mountPath")))
        by_name = re.fullmatch(r"\$\(workspaces\.[^.()]+\.volume\)", str(mount.get("name")))
        if containers:
            if not (by_name or mount.get("name") in volumes):
                raise UnsupportedError(
                    f"{where}.volumeMounts[{k}].name: the task has no volume {mount.get('name')!r}"
                )
            if not str(mount.get("mountPath")).startswith(("/", "$(workspaces.")):
                raise UnsupportedError(f"{where}.volumeMounts[{k}].mountPath: an absolute path is needed")
        elif workspace is None or mount.get("name") != f"$(workspaces.{workspace.group(1)}.volume)":
            raise UnsupportedError(
                f"{where}.volumeMounts[{k}]: a host process can only mount a workspace's volume at its"
                " path ($(workspaces.w.volume) at $(workspaces.w.path)); use --containers"
            )
    if "script" in car and "command" in car:
        raise UnsupportedError(f"{where}: a sidecar has either script or command, not both")
    if "script" not in car and "command" not in car and not containers:
        raise UnsupportedError(
            f"{where}: no command or script; an image's entrypoint runs only in its image: use --containers"
        )
    for key in ("startupProbe", "readinessProbe"):
        if key in car:
            _check_probe(car[key], f"{where}.{key}")


def _check_probe(probe: Any, where: str) -> None:
    """A probe the local executor can run: exec with a command, or tcpSocket/httpGet on a port number."""
    probe = check_fields(probe, "probe", where)
    kinds = [k for k in ("exec", "tcpSocket", "httpGet") if k in probe]
    if len(kinds) != 1:
        raise UnsupportedError(f"{where}: exactly one of exec, tcpSocket, httpGet is needed")
    check = probe[kinds[0]]
    if kinds[0] != "exec" and not isinstance((check or {}).get("port"), int):
        raise UnsupportedError(f"{where}.{kinds[0]}.port: a port number is needed locally")
    if kinds[0] == "exec" and not (check or {}).get("command"):
        raise UnsupportedError(f"{where}.exec.command: a command is needed")


def _is_param_ref(value: Any) -> bool:
    """`$(params.x)` (or `$(params["x"])`) alone: a value Tekton resolves before it validates it."""
    return (
        isinstance(value, str)
        and re.fullmatch(r"\$\(params(\.[-\w]+|\[[\"'][-\w]+[\"']\])\)", value) is not None
    )


def _check_env(env: Any, path: str) -> None:
    for i, var in enumerate(check_items(env, "env", path)):
        if "valueFrom" in var:
            source = check_fields(var["valueFrom"], "valueFrom", f"{path}[{i}].valueFrom")
            if len(source) != 1:
                raise UnsupportedError(f"{path}[{i}].valueFrom: one of secretKeyRef or configMapKeyRef")
            for kind, ref in source.items():
                check_fields(ref, kind, f"{path}[{i}].valueFrom.{kind}")


def _check_filled(binding: dict[str, Any], path: str) -> None:
    """A workspace filled with the keys of a Secret, a ConfigMap or both (projected)."""
    sources = []
    if "secret" in binding:
        sources.append((check_fields(binding["secret"], "secretVolume", f"{path}.secret"), f"{path}.secret"))
    if "configMap" in binding:
        config = check_fields(binding["configMap"], "configMapVolume", f"{path}.configMap")
        sources.append((config, f"{path}.configMap"))
    if "projected" in binding:
        projected = check_fields(binding["projected"], "projectedVolume", f"{path}.projected")
        listed = check_items(projected.get("sources"), "projection", f"{path}.projected.sources")
        for j, source in enumerate(listed):
            for kind, inner in source.items():
                where = f"{path}.projected.sources[{j}].{kind}"
                sources.append((check_fields(inner, "projectedSource", where), where))
    for source, where in sources:
        check_items(source.get("items"), "keyToPath", f"{where}.items")


def check_pipelinerun(run: Any, *, containers: bool = False) -> None:
    """Raise `UnsupportedError` naming the first field the local executor cannot honour
    (running steps as host processes, or with `containers` in their images)."""
    check_fields(run, "pipelinerun", "$")
    if run.get("apiVersion") != "tekton.dev/v1" or run.get("kind") != "PipelineRun":
        raise UnsupportedError("$: expected apiVersion tekton.dev/v1, kind PipelineRun")
    check_fields(run.get("metadata", {}), "metadata", "$.metadata")
    spec = check_fields(run.get("spec"), "spec", "$.spec")
    if "pipelineSpec" not in spec:
        raise UnsupportedError("$.spec: only an embedded pipelineSpec can run locally (no pipelineRef)")
    if "taskRunTemplate" in spec:
        check_fields(spec["taskRunTemplate"], "taskRunTemplate", "$.spec.taskRunTemplate")
    check_items(spec.get("taskRunSpecs"), "taskRunSpec", "$.spec.taskRunSpecs")
    if "timeouts" in spec:
        _check_timeouts(check_fields(spec["timeouts"], "timeouts", "$.spec.timeouts"))
    check_items(spec.get("params"), "param", "$.spec.params")
    for i, binding in enumerate(check_items(spec.get("workspaces"), "workspaceBinding", "$.spec.workspaces")):
        _check_filled(binding, f"$.spec.workspaces[{i}]")
    pipeline = check_fields(spec["pipelineSpec"], "pipelineSpec", "$.spec.pipelineSpec")
    check_items(pipeline.get("params"), "paramSpec", "$.spec.pipelineSpec.params")
    check_items(pipeline.get("workspaces"), "pipelineWorkspace", "$.spec.pipelineSpec.workspaces")
    check_items(pipeline.get("results"), "pipelineResult", "$.spec.pipelineSpec.results")
    for section in ("tasks", "finally"):
        for i, task in enumerate(pipeline.get(section) or []):
            _check_task(task, f"$.spec.pipelineSpec.{section}[{i}]", containers)
            if "timeout" in task:
                timeout_seconds(task["timeout"], f"$.spec.pipelineSpec.{section}[{i}].timeout")
            retries = task.get("retries", 0)
            if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
                raise UnsupportedError(
                    f"$.spec.pipelineSpec.{section}[{i}].retries: a whole number >= 0, not {retries!r}"
                )
    names = [t.get("name") for s in ("tasks", "finally") for t in pipeline.get(s) or []]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UnsupportedError(f"$.spec.pipelineSpec: duplicate task name {duplicates[0]!r}")
    for i, task_run in enumerate(check_items(spec.get("taskRunSpecs"), "taskRunSpec", "$.spec.taskRunSpecs")):
        if task_run.get("pipelineTaskName") not in names:  # Tekton refuses it too
            raise UnsupportedError(
                f"$.spec.taskRunSpecs[{i}].pipelineTaskName: no task {task_run.get('pipelineTaskName')!r}"
            )
        if "timeout" in task_run:
            timeout_seconds(task_run["timeout"], f"$.spec.taskRunSpecs[{i}].timeout")


def _check_timeouts(timeouts: dict[str, Any]) -> None:
    """Tekton's validation: pipeline >= tasks + finally; tasks or finally 0 (none) needs pipeline 0."""
    seconds = {key: timeout_seconds(value, f"$.spec.timeouts.{key}") for key, value in timeouts.items()}
    if "pipeline" not in seconds or seconds["pipeline"] is None:
        return
    for key in ("tasks", "finally"):
        if key in seconds and seconds[key] is None:
            raise UnsupportedError(f"$.spec.timeouts.{key}: 0 (no timeout) needs timeouts.pipeline 0 too")
    parts = sum(seconds.get(key) or 0.0 for key in ("tasks", "finally"))
    if parts > seconds["pipeline"]:
        raise UnsupportedError(
            f"$.spec.timeouts.pipeline: {timeouts['pipeline']} is less than tasks + finally"
            " (Tekton requires pipeline >= tasks + finally)"
        )
