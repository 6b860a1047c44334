"""From a pipeline task to steps ready to run: params, workspaces, `when`, env and commands.

Paths resolve to one of two layouts: host processes see this machine's folders
(`$(workspaces.w.path)` is the run's folder), containers (`RunContext.containers`) see the paths
Tekton gives a pod (`/workspace/w`, `/tekton/results/r`, scripts under /tekton/scripts) and get
the folders mounted there (`Step.mounts`). A step's environment is stepenv.py's.

Substitution happens in two phases, as in Tekton: the pipeline phase resolves a pipeline
task's `params` and `when` (pipeline params, context, other tasks' results, and in `finally`
`$(tasks.status)`); the task phase resolves the embedded taskSpec (task params, propagated
pipeline params, `$(results.r.path)`, `$(workspaces.w.*)`, `$(context.*)`).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.executors.local import readonly, stepresults
from controller.executors.local.containers import SCRIPTS_MOUNT, sandbox
from controller.executors.local.kubeexpand import expand_step
from controller.executors.local.memoryvolumes import size_limits
from controller.executors.local.objects import ClusterObjects, env_from
from controller.executors.local.params import is_referenced, task_params
from controller.executors.local.process import Mount, Step
from controller.executors.local.secrets import LocalSecrets
from controller.executors.local.stepcommand import step_argv, step_workdir
from controller.executors.local.stepenv import CONTAINER_ENV, host_env, step_env
from controller.executors.local.steptemplate import merge_step
from controller.executors.local.tekton import UnsupportedError, timeout_seconds
from controller.executors.local.tracking import container_spool
from controller.executors.local.typed import parse_result
from controller.executors.local.variables import TEKTON_ROOTS, Scope, Value, substitute, substitute_list
from controller.executors.local.volumes import (
    RESULTS_MOUNT,
    is_memory,
    memory_root,
    volume_mounts,
    workspace_mounts,
)
from controller.executors.local.workspaces import Workspace, propagate_workspaces, task_workspaces

SERVE_MOUNT = "/tekton/serve"  # where a containerised deploy step writes its serve request
STEPS_MOUNT = "/tekton/steps"  # each step's folder: step-<name>/exitCode, as Tekton's entrypoint writes


def step_dirs(steps: list[dict[str, Any]]) -> list[str]:
    """Each step's folder under /tekton/steps: `step-<name>`, or `step-unnamed-<index>`."""
    return [f"step-{s.get('name') or f'unnamed-{j}'}" for j, s in enumerate(steps)]


def _paths(where: str, steps: list[Any]) -> list[str]:
    return [f"{where}.taskSpec.steps[{j}]" for j in range(len(steps))]


def on_error(step: dict[str, Any], where: str) -> str:
    """A step's `onError` after substitution (it may come from a param): continue | stopAndFail."""
    value = step.get("onError", "stopAndFail")
    if value not in ("continue", "stopAndFail"):
        raise UnsupportedError(f"{where}.onError: {value!r} is not continue or stopAndFail")
    return str(value)


@dataclass
class RunContext:
    run: str
    namespace: str
    pipeline: str
    workflow: str
    run_dir: Path
    home: Path
    params: dict[str, Value]
    workspaces: dict[str, Workspace]
    secrets: LocalSecrets
    uid: str = ""
    containers: bool = False  # steps run in their images: paths resolve to the pod's layout
    pod: dict[str, Any] = field(default_factory=dict)  # the pod template's securityContext
    pod_templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # per task (podtemplate.py)
    objects: ClusterObjects = field(default_factory=ClusterObjects)  # the input's ConfigMaps, Secrets
    taskrun_names: dict[str, str] = field(default_factory=dict)  # a TaskRun's task -> its own name

    @property
    def workspaces_dir(self) -> Path:
        return self.run_dir / "workspaces"

    def context_values(self) -> dict[str, Value]:
        return run_context(self.run, self.namespace, self.pipeline, self.uid)


def local_uid(name: str) -> str:
    """A Kubernetes-style uid for a local object: a UUID fixed by its name (run names are used once)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sluice-local:{name}"))


def pipeline_name(run: dict[str, Any]) -> str:
    """$(context.pipeline.name): a referenced Pipeline's name (references.py labels it), else the run's."""
    meta = run.get("metadata") or {}
    return str((meta.get("labels") or {}).get("tekton.dev/pipeline") or meta.get("name") or "")


def run_context_of(run: dict[str, Any]) -> dict[str, Value]:
    """The pipeline-level context variables of a PipelineRun object."""
    meta = run.get("metadata") or {}
    name = str(meta.get("name") or "")
    return run_context(name, str(meta.get("namespace") or "default"), pipeline_name(run))


def run_context(run: str, namespace: str, pipeline: str, uid: str = "") -> dict[str, Value]:
    """The `context.pipelineRun.*` and `context.pipeline.name` variables."""
    return {
        "context.pipelineRun.name": run,
        "context.pipelineRun.namespace": namespace,
        "context.pipelineRun.uid": uid or local_uid(run),
        "context.pipeline.name": pipeline,
    }


def pipeline_scope(
    ctx: RunContext,
    results: Mapping[str, Mapping[str, Value]],
    statuses: dict[str, str] | None,
    where: str,
    task: dict[str, Any] | None = None,
) -> Scope:
    """The pipeline phase's variables for `task` (None: the pipeline's results)."""
    values: dict[str, Value] = {f"params.{k}": v for k, v in ctx.params.items()}
    values.update(ctx.context_values())
    values.update(
        {f"workspaces.{w}.bound": str(ws.path is not None).lower() for w, ws in ctx.workspaces.items()}
    )
    for name, task_results in results.items():  # typed as Tekton types what a step wrote
        values.update({f"tasks.{name}.results.{r}": parse_result(v) for r, v in task_results.items()})
    if task is not None:
        values["context.pipelineTask.retries"] = str(int(task.get("retries") or 0))
    owned: tuple[str, ...] = ("params", "tasks", "context.pipelineRun", "context.pipeline")
    if statuses is not None:  # finally: $(tasks.status) and $(tasks.X.status)
        values.update({f"tasks.{t}.status": s for t, s in statuses.items()})
        failed = any(s == "Failed" for s in statuses.values())
        skipped = any(s == "None" for s in statuses.values())
        values["tasks.status"] = "Failed" if failed else "Completed" if skipped else "Succeeded"
    return Scope(values, owned, (), where)


def when_passes(task: dict[str, Any], scope: Scope) -> tuple[bool, str]:
    """Every `when` expression true? Returns (passes, the first false expression resolved)."""
    for expression in task.get("when") or []:
        value = substitute(expression.get("input", ""), scope)
        options = substitute_list(list(expression.get("values") or []), scope)
        inside = value in options
        if inside != (expression["operator"] == "in"):
            return False, f"{value!r} {expression['operator']} {options}"
    return True, ""


@dataclass
class ResolvedTask:
    name: str
    taskrun: str
    params: dict[str, Value]
    spec: dict[str, Any]  # the taskSpec after substitution
    steps: list[Step]
    results_dir: Path
    result_names: list[str]
    workspace_paths: dict[str, Path]
    secret_values: list[str] = field(default_factory=list)
    volumes_dir: Path | None = None  # the attempt's emptyDir volumes: gone when the attempt ends
    sidecars: list[Step] = field(default_factory=list)  # started before `steps`, stopped after them
    pod: dict[str, Any] = field(default_factory=dict)  # its pod template (podtemplate.py), params substituted
    views: list[Mount] = field(default_factory=list)  # host steps: read-only workspace views (readonly.py)
    spec_results: list[dict[str, Any]] = field(default_factory=list)  # declared: the types to check
    # the attempt's `medium: Memory` emptyDirs, in memory (volumes.memory_root): gone when it ends
    memory_dir: Path | None = None
    # their sizeLimits (bytes), honoured where the engine can (memoryvolumes.py)
    memory_limits: dict[str, int] = field(default_factory=dict)
    step_results: stepresults.StepResultReader | None = None  # what its steps wrote (stepresults.py)


def resolve_task(
    ctx: RunContext,
    task: dict[str, Any],
    pscope: Scope,
    task_dir: Path,
    attempt: int,
    where: str,
    taskrun: str = "",
) -> ResolvedTask:
    """Substitute everything in one task and build its steps (raises on what cannot run).
    `taskrun`: the TaskRun's name, when not `<pipelinerun>-<task>` (a matrix combination's)."""
    name = task["name"]
    taskrun = taskrun or ctx.taskrun_names.get(name) or f"{ctx.run}-{name}"
    task = propagate_workspaces(task, set(ctx.workspaces))
    task_context: dict[str, Value] = {
        "context.taskRun.name": taskrun,
        "context.taskRun.namespace": ctx.namespace,
        "context.taskRun.uid": local_uid(taskrun),
        "context.task.name": name,
        "context.task.retry-count": str(attempt),
    }
    params = task_params(task, pscope, where, task_context)
    results_dir = task_dir / "results"
    spec = task["taskSpec"]
    result_names = [r["name"] for r in spec.get("results") or []]
    workspaces = task_workspaces(ctx.workspaces, task, task_dir, where, pscope)
    # an embedded spec sees what propagates from the pipeline; a referenced Task only its own
    values: dict[str, Value] = {} if is_referenced(task) else dict(pscope.values)
    values.update({f"params.{k}": v for k, v in params.items()})
    values.update({f"inputs.params.{k}": v for k, v in params.items()})  # v1beta1's form, still substituted
    results_at = RESULTS_MOUNT if ctx.containers else str(results_dir)
    values.update({f"results.{r}.path": f"{results_at}/{r}" for r in result_names})
    mount_paths = {
        d["name"]: d.get("mountPath") or f"/workspace/{d['name']}" for d in spec.get("workspaces") or []
    }
    # a read-only workspace is seen by host steps through its own folder, mounted read-only over it
    # in the step's mount namespace: the same claim bound read-write under another name stays writable
    read_only = [] if ctx.containers else readonly.views(spec, workspaces, task_dir / "readonly")
    views = {str(real): str(view) for real, view in read_only}
    for ws_name, (ws, path) in workspaces.items():
        ro = any(d["name"] == ws_name and d.get("readOnly") for d in spec.get("workspaces") or [])
        seen = (
            mount_paths.get(ws_name, "") if ctx.containers else views.get(str(path), "") if ro else str(path)
        )
        values[f"workspaces.{ws_name}.path"] = seen if path else ""
        values[f"workspaces.{ws_name}.bound"] = "true" if path else "false"
        values[f"workspaces.{ws_name}.claim"] = ws.claim
        values[f"workspaces.{ws_name}.volume"] = ws.name
    steps_at = STEPS_MOUNT if ctx.containers else str(task_dir / "steps")
    dirs = step_dirs(spec["steps"])
    values.update({f"steps.{s}.exitCode.path": f"{steps_at}/{s}/exitCode" for s in dirs})
    values.update(task_context)
    # each step's own $(step.results.r.path) first; $(steps.s.results.r) waits for the step to start
    own = [
        substitute(
            step, Scope(stepresults.own_paths(step, f"{steps_at}/{d}/results"), ("step.results",), (), at)
        )
        for step, d, at in zip(spec["steps"], dirs, _paths(where, spec["steps"]), strict=True)
    ]
    spec = {**spec, "steps": own}
    # the last phase: any Tekton variable still unknown is an error (refcheck.py names it before the run)
    scope = Scope(values, TEKTON_ROOTS, stepresults.pending(spec["steps"]), f"{where}.taskSpec")
    resolved_spec = {
        k: substitute(v, scope) for k, v in spec.items() if k in ("steps", "stepTemplate", "sidecars")
    }
    mounts = {mount_paths[name]: path for name, (_, path) in workspaces.items() if name in mount_paths}
    shared = workspace_mounts(spec, {name: path for name, (_, path) in workspaces.items()}, results_dir)
    if ctx.containers and any("script" in c for c in [*spec["steps"], *(spec.get("sidecars") or [])]):
        (task_dir / "scripts").mkdir(parents=True, exist_ok=True)
        shared.append(Mount(SCRIPTS_MOUNT, task_dir / "scripts", read_only=True))
    volumes_dir = task_dir / "volumes"
    shutil.rmtree(volumes_dir, ignore_errors=True)  # each attempt is a new pod: its emptyDirs start empty
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    memory_dir = _memory_dir(ctx.run, taskrun, volumes_dir, volumes)
    secret_values: list[str] = []
    template = resolved_spec.get("stepTemplate") or {}
    pod = ctx.pod_templates.get(name, {})
    steps_dir = task_dir / "steps"
    shutil.rmtree(steps_dir, ignore_errors=True)  # exit codes of this attempt only
    steps_dir.mkdir(parents=True)
    if ctx.containers:
        shared.append(Mount(STEPS_MOUNT, steps_dir, read_only=True))
    reader = stepresults.StepResultReader(steps_dir, spec["steps"], dirs, lambda: ctx.secrets.used)
    steps = []
    for j, (step, step_dir) in enumerate(zip(resolved_spec["steps"], step_dirs(spec["steps"]), strict=True)):
        step_where = f"{where}.taskSpec.steps[{j}]"
        step_name = step.get("name") or f"unnamed-{j}"
        step = merge_step(template, step)
        binds, tmpdir = volume_mounts(step.get("volumeMounts") or [], volumes, volumes_dir, memory_dir)
        base = (
            dict(CONTAINER_ENV)
            if ctx.containers
            else host_env(ctx.home, ctx.workflow, ctx.run, ctx.namespace, taskrun, tmpdir)
        )
        # the step's env wins over its envFrom, the pod template's over both (Kubernetes', Tekton's rules)
        sourced = env_from(step.get("envFrom") or [], ctx.objects, ctx.secrets, step_where)
        env = step_env(
            base,
            [*sourced, *(step.get("env") or []), *pod.get("env", [])],
            ctx.secrets,
            secret_values,
            step_where,
            ctx.objects.config_maps,
        )
        declared = [str(e.get("name")) for e in [*sourced, *(step.get("env") or []), *pod.get("env", [])]]
        step = expand_step(step, declared, env, secret_values, step_where)  # the kubelet's, after Tekton's
        argv = step_argv(step, task_dir / "scripts", f"{j}-{step_name}", ctx.containers)
        timeout = timeout_seconds(step["timeout"], f"{step_where}.timeout") if "timeout" in step else None
        if stepresults.declared(step):  # its own results folder, writable by it alone
            (steps_dir / step_dir / "results").mkdir(parents=True)
            binds.append(Mount(f"{STEPS_MOUNT}/{step_dir}/results", steps_dir / step_dir / "results"))
        if ctx.containers:
            box = sandbox(step, template, pod.get("securityContext", ctx.pod), argv)
            cwd = task_dir / "work"  # the engine client's; the step's own is box.workdir
            cwd.mkdir(parents=True, exist_ok=True)
            spool = container_spool(ctx.home, ctx.run, argv, [*shared, *binds], env)
            if spool is not None:  # a stage that logs to MLflow: through the run's logger
                binds.append(spool)
            if "stages.deploy" in argv:  # its model server is started by the executor (serving.py)
                env["SLUICE_SERVE_REQUEST"] = f"{SERVE_MOUNT}/request.json"
                (task_dir / "serve").mkdir(parents=True, exist_ok=True)
                binds.append(Mount(SERVE_MOUNT, task_dir / "serve"))
        else:
            box = None
            # read-only folders: a container mounts them `:ro`, a host process gets its own mounts; a
            # workingDir in a read-only workspace's view is started in its folder, moved into the view
            view_folders: dict[str, Path | None] = {str(view): real for real, view in read_only}
            cwd = step_workdir(step.get("workingDir"), {**mounts, **view_folders}, task_dir)
            read_only_tmp = (
                [(tmpdir, tmpdir)] if tmpdir and any(b.read_only and b.host == tmpdir for b in binds) else []
            )
            inside = str(step.get("workingDir") or "")
            chdir = inside if any(inside == v or inside.startswith(v + "/") for v in view_folders) else None
            argv = readonly.wrap(argv, [*read_only, *read_only_tmp], chdir)
        steps.append(
            Step(
                step_name,
                argv,
                env,
                cwd,
                timeout,
                on_error(step, step_where) == "continue",
                mounts=[*shared, *binds],
                sandbox=box,
                exit_code_file=steps_dir / step_dir / "exitCode",
                on_start=reader.start if reader.used else None,
            )
        )
    sidecars = []  # host processes, or containers of the TaskRun's pod (pods.py)
    workspace_volumes = {ws.name: path for ws, path in workspaces.values() if path is not None}
    for j, car in enumerate(resolved_spec.get("sidecars") or []):
        car_where, car_name = f"{where}.taskSpec.sidecars[{j}]", car.get("name") or f"unnamed-{j}"
        env = step_env(
            dict(CONTAINER_ENV)
            if ctx.containers
            else host_env(ctx.home, ctx.workflow, ctx.run, ctx.namespace, taskrun, None),
            [*(car.get("env") or []), *pod.get("env", [])],  # a pod template's env reaches every container
            ctx.secrets,
            secret_values,
            car_where,
            ctx.objects.config_maps,
        )
        argv = step_argv(car, task_dir / "scripts", f"sidecar-{j}-{car_name}", ctx.containers)
        if ctx.containers:  # Tekton mounts the task's workspaces in sidecars too
            own = [m for m in car.get("volumeMounts") or [] if m["name"] in volumes]  # emptyDirs
            binds, _ = volume_mounts(own, volumes, volumes_dir, memory_dir)
            binds += [  # a workspace's volume mounted by name at another path
                Mount(m["mountPath"], workspace_volumes[m["name"]], bool(m.get("readOnly")))
                for m in car.get("volumeMounts") or []
                if m["name"] in workspace_volumes and m["mountPath"] not in {b.path for b in shared}
            ]
            box = sandbox(car, {}, pod.get("securityContext", ctx.pod), argv)
            (task_dir / "work").mkdir(parents=True, exist_ok=True)
            sidecars.append(
                Step(car_name, argv, env, task_dir / "work", mounts=[*shared, *binds], sandbox=box)
            )
        else:
            cwd = step_workdir(car.get("workingDir"), mounts, task_dir)
            sidecars.append(Step(car_name, readonly.wrap(argv, read_only), env, cwd))
    return ResolvedTask(
        name,
        taskrun,
        params,
        resolved_spec,
        steps,
        results_dir,
        result_names,
        {k: p for k, (_, p) in workspaces.items() if p is not None},
        secret_values,
        volumes_dir if volumes else None,
        sidecars,
        pod,
        [Mount(str(view), real) for real, view in read_only],
        list(spec.get("results") or []),
        memory_dir if memory_dir != volumes_dir else None,
        size_limits(volumes),
        reader if reader.used else None,
    )


def _memory_dir(run: str, taskrun: str, volumes_dir: Path, volumes: dict[str, dict[str, Any]]) -> Path:
    """The attempt's folder for its `medium: Memory` volumes, emptied (each attempt is a new pod):
    `<memory root>/<run>/<taskrun>`, or `volumes_dir` where this machine has no memory root."""
    root = memory_root() if any(is_memory(v) for v in volumes.values()) else None
    if root is None:
        return volumes_dir
    folder = root / run / taskrun
    shutil.rmtree(folder, ignore_errors=True)
    return folder
