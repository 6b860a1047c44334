"""Workflow steps -> Tekton pipeline tasks with embedded taskSpecs.

A built-in step (`uses: sluice/<stage>`) runs the stages image as
`python -m stages.<module>` following the stage contract in
docs/architecture.md; a container step keeps its image, command/args or
script, workingDir, env and resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller import settings
from controller.compiler.containers import compute_resources, security_context, tmp_mount, tmp_volume
from controller.compiler.errors import Problems
from controller.compiler.modelstore import model_store_env
from controller.compiler.naming import env_name, label_value
from controller.compiler.outputs import output_steps
from controller.compiler.references import (
    ARTIFACTS,
    RUN_VOLUME,
    SOURCE,
    WORKSPACE_DIR,
    RunScope,
    TaskRenderer,
)
from controller.compiler.values import param_text
from controller.serving.store import ModelStore
from controller.serving.tracking import MlflowTracking
from controller.spec.model import Step, Template
from controller.spec.shelltext import check_code_texts, code_texts
from controller.spec.stages import STAGES
from controller.units import format_duration

LABEL_STEP = f"{settings.API_GROUP}/step"
LABEL_INTERNAL = f"{settings.API_GROUP}/internal"


@dataclass(frozen=True)
class RunInfo:
    """Run-wide facts every step sees."""

    workflow: str
    run: str
    namespace: str  # a literal, or Tekton's `$(context.taskRun.namespace)`
    stages_image: str
    model_store: ModelStore | None = None  # durable model storage, for the deploy step
    mlflow: MlflowTracking | None = None  # MLflow tracking, for every built-in stage (docs/mlflow.md)
    allow_cluster_git_hosts: bool = False  # clone steps may fetch from in-cluster Git hosts


@dataclass
class TaskPlan:
    """One pipeline task and what the pipeline-level timeout needs to know about it."""

    name: str
    task: dict[str, Any]
    timeout_seconds: int
    retries: int = 0
    run_after: list[str] = field(default_factory=list)
    deployer: bool = False  # runs as the deployer ServiceAccount (manages serving resources)


def sluice_env(run: RunInfo) -> list[dict[str, Any]]:
    return [
        {"name": "SLUICE_WORKFLOW", "value": run.workflow},
        {"name": "SLUICE_RUN", "value": run.run},
        {"name": "SLUICE_NAMESPACE", "value": run.namespace},
    ]


class EnvList:
    """Ordered environment; a later entry of the same name replaces the earlier one in place."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def set(self, entry: dict[str, Any]) -> None:
        self._entries[entry["name"]] = entry

    def extend(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            self.set(entry)

    def render(self) -> list[dict[str, Any]]:
        return list(self._entries.values())


def secret_env(name: str, secret_name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def extension_env(step: Step, scope: RunScope) -> list[dict[str, Any]]:
    """Every configuration value of the step's resolved extensions; credentials from their Secrets."""
    entries: list[dict[str, Any]] = []
    for selector in step.extensions:
        resolved = scope.extensions.get(step.name, {}).get(selector.name)
        if resolved is None:
            continue
        for key, value in resolved.config.items():
            entries.append({"name": env_name(key) if not _env_ok(key) else key, "value": value})
        for key, ref in resolved.secrets.items():
            entries.append(secret_env(env_name(key) if not _env_ok(key) else key, ref.name, ref.key))
    return entries


def _env_ok(name: str) -> bool:
    return (
        bool(name)
        and (name[0].isalpha() or name[0] in "_-.")
        and all(c.isalnum() or c in "_-." for c in name)
    )


def user_env(step: Step, scope: RunScope, renderer: TaskRenderer, problems: Problems) -> list[dict[str, Any]]:
    entries = []
    for index, var in enumerate(step.env):
        path = problems.step_path(
            step.name, f".env.{var.name}" if scope.workflow.dialect == "native" else f".env[{index}]"
        )
        if var.secret is not None:
            entries.append(secret_env(var.name, var.secret.name, var.secret.key))
            continue
        if var.value is None:
            entries.append({"name": var.name, "value": ""})
            continue
        secret = scope.secret_of(var.value, step, path)
        if secret is not None:
            entries.append(secret_env(var.name, secret.name, secret.key))
        else:
            entries.append({"name": var.name, "value": renderer.text(var.value, path)})
    return entries


def results_of(step: Step) -> list[dict[str, Any]]:
    results = []
    for output in step.outputs:
        kind = f"path of the {output.type} directory" if output.is_artifact else f"the {output.type}"
        description = output.description or f"{kind} output {output.name!r}"
        results.append({"name": output.name, "type": "string", "description": description})
    return results


def workspace_bindings(
    renderer: TaskRenderer, mounts: list[tuple[str, str, str | None]]
) -> tuple[list, list]:
    """(taskSpec workspaces, pipeline task workspace bindings).

    `mounts` are (task workspace name, source subdir, mountPath) for codesets mounted at a path.
    """
    declared: list[dict[str, Any]] = []
    bound: list[dict[str, Any]] = []
    if renderer.uses_artifacts:
        declared.append({"name": ARTIFACTS, "description": "the run's artifact store"})
        bound.append(run_volume_binding(ARTIFACTS, ARTIFACTS))
    if renderer.uses_source:
        declared.append({"name": SOURCE, "description": "the run's checked-out codesets", "readOnly": True})
        bound.append(run_volume_binding(SOURCE, SOURCE))
    for name, subdir, mount_path in mounts:
        declaration: dict[str, Any] = {"name": name, "description": f"codeset {subdir}"}
        if mount_path:
            declaration["mountPath"] = mount_path
        declared.append(declaration)
        bound.append(run_volume_binding(name, f"{SOURCE}/{subdir}"))
    return declared, bound


def run_volume_binding(task_workspace: str, sub_path: str) -> dict[str, Any]:
    """A task workspace bound to a folder of the run's one claim-backed workspace."""
    return {"name": task_workspace, "workspace": RUN_VOLUME, "subPath": sub_path}


def pipeline_task(
    name: str,
    step_spec: dict[str, Any] | list[dict[str, Any]],
    renderer: TaskRenderer,
    *,
    labels: dict[str, str],
    description: str,
    results: list[dict[str, Any]],
    run_after: list[str],
    mounts: list[tuple[str, str, str | None]] | None = None,
    extra_workspaces: list[tuple[dict[str, Any], dict[str, Any]]] | None = None,
    retries: int = 0,
    timeout_seconds: int = settings.DEFAULT_TASK_TIMEOUT_SECONDS,
) -> TaskPlan:
    spec_params, task_params = renderer.task_params()
    declared, bound = workspace_bindings(renderer, mounts or [])
    for declaration, binding in extra_workspaces or []:
        declared.append(declaration)
        bound.append(binding)
    after = sorted(set(run_after) | renderer.after, key=lambda t: (t not in run_after, t))
    steps = step_spec if isinstance(step_spec, list) else [step_spec]
    for step in steps:  # the root filesystem is read-only: every step writes scratch files to /tmp
        step["volumeMounts"] = [tmp_mount()]
    spec = {
        "metadata": {"labels": labels},
        **_given(description=description, params=spec_params, results=results, workspaces=declared),
        "steps": steps,
        "volumes": [tmp_volume()],
    }
    task = {
        "name": name,
        **_given(runAfter=after, params=task_params, workspaces=bound, retries=retries),
        "timeout": format_duration(timeout_seconds),
        "taskSpec": spec,
    }
    return TaskPlan(name, task, timeout_seconds, retries, after)


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that have a value, in the order given (an empty one is Tekton's default: left out)."""
    return {key: value for key, value in fields.items() if value}


def builtin_task(step: Step, task_name: str, scope: RunScope, run: RunInfo, problems: Problems) -> TaskPlan:
    """`uses: sluice/<stage>` -> `python -m stages.<module>` with the stage contract's arguments."""
    stage = STAGES[step.uses or ""]
    renderer = TaskRenderer(scope, step)
    renderer.uses_artifacts = True  # stages write their artifacts and read others' by path
    args: list[str] = []
    for key, value in step.with_.items():
        rendered = renderer.value(value, problems.step_path(step.name, f".with.{key}"))
        args += [f"--{key}", param_text(rendered)]
    for output in step.outputs:
        args += ["--result", f"{output.name}=$(results.{output.name}.path)"]
    args += ["--artifacts-dir", f"$(workspaces.{ARTIFACTS}.path)/{step.name}"]
    env = EnvList()
    env.extend(sluice_env(run))
    if run.mlflow is not None:  # before the model store's: its AWS_* keys win on the deploy step
        env.extend(run.mlflow.step_env())
        if scope.codesets:  # the MLflow run's sluice.codeset-commits: the commits the run pins
            pinned = ",".join(f"{c.subdir}={c.revision}" for c in scope.codesets.values())
            env.set({"name": "SLUICE_CODESET_REVISIONS", "value": pinned})
    for name, fact in stage.artifacts_env.items():  # e.g. deploy: the claim a serving runtime reads
        value = WORKSPACE_DIR if fact == "root" else f"$(workspaces.{ARTIFACTS}.{fact})"
        env.set({"name": name, "value": value})
    if run.model_store is not None and "claim" in stage.artifacts_env.values():
        env.extend(model_store_env(run.model_store))  # it hands the model to a serving runtime
    for param, name in stage.image_env.items():  # e.g. deploy's runtime: sluice serves in the image
        if param in step.with_:
            env.set({"name": name, "value": run.stages_image})
    env.extend(extension_env(step, scope))
    if stage.deployer and step.env:
        # It runs with the deployer's token: an environment (LD_PRELOAD, PYTHONPATH into the
        # artifacts a user step wrote) could make it run user code with that token.
        problems.error(
            problems.step_path(step.name, ".env"),
            "env.deployer",
            f"step {step.name!r} runs sluice/{stage.name} as the deployer ServiceAccount and takes no "
            "env: give its settings with `with:`",
        )
    env.extend(user_env(step, scope, renderer, problems))
    container = {
        "name": task_name,
        "image": run.stages_image,
        "command": ["python", "-m", f"stages.{stage.module}"],
        "args": args,
        "env": env.render(),
        "computeResources": compute_resources(step.resources.requests, step.resources.limits),
        "securityContext": security_context(),
    }
    plan = pipeline_task(
        task_name,
        container,
        renderer,
        labels={LABEL_STEP: label_value(step.name)},
        description=f"sluice/{stage.name}: {stage.description}",
        results=results_of(step),
        run_after=[scope.step_tasks[s] for s in step.run_after if s in scope.step_tasks],
        retries=step.retries,
        timeout_seconds=step.timeout_seconds or settings.DEFAULT_TASK_TIMEOUT_SECONDS,
    )
    plan.deployer = stage.deployer
    return plan


def container_task(step: Step, task_name: str, scope: RunScope, run: RunInfo, problems: Problems) -> TaskPlan:
    """A native container step: its image, command/args or script, workingDir, env, resources."""
    renderer = TaskRenderer(scope, step)
    renderer.uses_artifacts = True  # it may read artifact paths and write its own under SLUICE_ARTIFACTS_DIR
    container: dict[str, Any] = {"name": task_name}
    if step.image is not None:
        container["image"] = renderer.text(step.image, problems.step_path(step.name, ".image"))
    # Text a shell reads (a script, a `sh -c` string) gets values as environment variables
    # (`TaskRenderer.shell_text`); other interpreters' code with references is refused.
    shell = {text.field: text.template for text in code_texts(step) if text.shell}
    check_code_texts(
        step, lambda field, code, message: problems.error(problems.step_path(step.name, field), code, message)
    )

    def render(field: str, item: Any) -> Any:
        path = problems.step_path(step.name, field)
        if field in shell:
            return renderer.shell_text(shell[field], path)
        return renderer.text(item, path) if isinstance(item, Template) else renderer.value(item, path)

    if step.command is not None:
        container["command"] = [render(f".command[{i}]", item) for i, item in enumerate(step.command)]
    if step.args:
        container["args"] = [render(f".args[{i}]", arg) for i, arg in enumerate(step.args)]
    if step.script is not None:
        container["script"] = render(".script", step.script)
    if step.working_dir is not None:
        container["workingDir"] = renderer.text(
            step.working_dir, problems.step_path(step.name, ".workingDir")
        )
    env = EnvList()
    env.extend(sluice_env(run))
    env.set({"name": "SLUICE_ARTIFACTS_DIR", "value": f"$(workspaces.{ARTIFACTS}.path)/{step.name}"})
    env.extend(extension_env(step, scope))
    env.extend(user_env(step, scope, renderer, problems))
    env.extend([{"name": name, "value": value} for name, value in renderer.shell_env.items()])
    after = [scope.step_tasks[s] for s in step.run_after if s in scope.step_tasks]
    before_steps, after_steps = output_steps(step, task_name, run.stages_image, sluice_env(run))
    return user_step_task(
        step, task_name, container, env, renderer, run_after=after, around=(before_steps, after_steps)
    )


def user_step_task(
    step: Step,
    task_name: str,
    container: dict[str, Any],
    env: EnvList,
    renderer: TaskRenderer,
    *,
    run_after: list[str],
    mounts: list[tuple[str, str, str | None]] | None = None,
    around: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], []),
) -> TaskPlan:
    """A user's container step (native or FuseML), restricted and bounded like every step; `around`
    are steps the compiler runs before and after it in the same task (`outputs.output_steps`)."""
    container["env"] = env.render()
    container["computeResources"] = compute_resources(step.resources.requests, step.resources.limits)
    container["securityContext"] = security_context()
    return pipeline_task(
        task_name,
        [*around[0], container, *around[1]],
        renderer,
        labels={LABEL_STEP: label_value(step.name)},
        description="",
        results=results_of(step),
        run_after=run_after,
        mounts=mounts,
        retries=step.retries,
        timeout_seconds=step.timeout_seconds or settings.DEFAULT_TASK_TIMEOUT_SECONDS,
    )
