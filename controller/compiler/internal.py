"""Tasks the compiler adds: codeset checkout, numeric gates, the run summary (finally) and, when
MLflow tracking is configured, the end of the run's MLflow run (finally).

They run stage programs (`stages.clone`, `stages.gate`, `stages.summary`, `stages.tracking_end`) so the
local executor runs them exactly like the cluster does.
"""

from __future__ import annotations

from typing import Any

from controller.compiler.containers import internal_resources, security_context
from controller.compiler.references import ARTIFACTS, CLONE_RESULT, SOURCE, RunScope, TaskRenderer
from controller.compiler.tasks import (
    LABEL_INTERNAL,
    RunInfo,
    TaskPlan,
    pipeline_task,
    run_volume_binding,
    sluice_env,
)
from controller.compiler.values import CodesetPlan
from controller.spec.model import Step, When

CLONE_TIMEOUT_SECONDS = 600
GATE_TIMEOUT_SECONDS = 120
SUMMARY_TIMEOUT_SECONDS = 300
TRACKING_END_TIMEOUT_SECONDS = 120  # finally tasks run side by side: within the summary's time
CREDENTIALS = "git-credentials"
GATE_RESULT = "pass"
# A gate's taskSpec description: the condition as the user wrote it, read back by the local
# executor to say why a step was skipped (`gate_condition`).
_GATE_DESCRIPTION = "Gate of step {step!r}: {condition}"
_GATE_PREFIX = "Gate of step "
SUMMARY_RESULT = "status"


def credentials_workspace(plan: CodesetPlan) -> str:
    """The pipeline workspace carrying a codeset's Secret (one per codeset with credentials)."""
    return f"{CREDENTIALS}-{plan.subdir}"


# The operator's setting the clone step needs too: a Codeset on an in-cluster Git server admitted by
# the operator must not be refused by its own clone step (stages.clone reads it with
# `settings.allow_cluster_git_hosts()`; loopback and private addresses stay refused).
CLUSTER_GIT_HOSTS_ENV = {"name": "SLUICE_ALLOW_CLUSTER_GIT_HOSTS", "value": "1"}


def _container(
    name: str, run: RunInfo, module: str, args: list[str], env: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": run.stages_image,
        "command": ["python", "-m", f"stages.{module}"],
        "args": args,
        "env": [*sluice_env(run), *env],
        "computeResources": internal_resources(),
        "securityContext": security_context(),
    }


def _internal_task(
    task_name: str,
    run: RunInfo,
    module: str,
    args: list[str],
    renderer: TaskRenderer,
    *,
    description: str,
    result: tuple[str, str],
    env: list[dict[str, Any]] | None = None,
    **options: Any,
) -> TaskPlan:
    """A task of its own running `stages.<module>` with `args`, then `--result` for its one string
    result (name, description), and `env` after the run's SLUICE_* variables; labelled internal,
    after nothing but what its params name."""
    name, meaning = result
    argv = [*args, "--result", f"{name}=$(results.{name}.path)"]
    return pipeline_task(
        task_name,
        _container(task_name, run, module, argv, env or []),
        renderer,
        labels={LABEL_INTERNAL: module},
        description=description,
        results=[{"name": name, "type": "string", "description": meaning}],
        run_after=[],
        **options,
    )


def clone_task(plan: CodesetPlan, task_name: str, scope: RunScope, run: RunInfo) -> TaskPlan:
    """A shallow checkout of one codeset at its pinned revision into `source/<subdir>`."""
    args = [
        "--url",
        plan.url,
        "--revision",
        plan.revision,
        "--dest",
        f"$(workspaces.{SOURCE}.path)/{plan.subdir}",
    ]
    workspaces: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"name": SOURCE, "description": "where codesets are checked out"},
            run_volume_binding(SOURCE, SOURCE),
        )
    ]
    if plan.secret_name:
        args += ["--credentials-dir", f"$(workspaces.{CREDENTIALS}.path)"]
        workspaces.append(
            (
                {"name": CREDENTIALS, "description": "git credentials (a Secret)", "readOnly": True},
                {"name": CREDENTIALS, "workspace": credentials_workspace(plan)},
            )
        )
    return _internal_task(
        task_name,
        run,
        "clone",
        args,
        TaskRenderer(scope, None),
        description=f"Check out codeset {plan.input!r} at {plan.revision}",
        result=(CLONE_RESULT, "the commit checked out"),
        env=[CLUSTER_GIT_HOSTS_ENV] if run.allow_cluster_git_hosts else [],
        extra_workspaces=workspaces,
        retries=1,  # network blips; the checkout is idempotent
        timeout_seconds=CLONE_TIMEOUT_SECONDS,
    )


def gate_task(step: Step, when: When, task_name: str, scope: RunScope, run: RunInfo, path: str) -> TaskPlan:
    """A numeric comparison as a task whose `pass` result feeds the step's Tekton `when`."""
    renderer = TaskRenderer(scope, step)
    args = [
        "--left",
        renderer.text(when.left, path),
        "--op",
        when.op,
        "--right",
        renderer.text(when.right[0], path),
    ]
    return _internal_task(
        task_name,
        run,
        "gate",
        args,
        renderer,
        description=_GATE_DESCRIPTION.format(step=step.name, condition=when.raw),
        result=(GATE_RESULT, "true when the condition holds"),
        timeout_seconds=GATE_TIMEOUT_SECONDS,
    )


def gate_condition(description: str) -> str | None:
    """The condition a gate task's description holds, as the user wrote it; None if not a gate's."""
    if not description.startswith(_GATE_PREFIX):
        return None
    _, sep, condition = description.partition("': ")
    return condition if sep else None


def summary_task(task_name: str, tasks: list[tuple[str, str]], scope: RunScope, run: RunInfo) -> TaskPlan:
    """The `finally` task: records every task's status and the run's in a summary file.

    `tasks` are (name shown in the summary, pipeline task name). It reads statuses only, never
    results: Tekton skips a finally task whose params name a result that was not produced.
    """
    renderer = TaskRenderer(scope, None)
    renderer.uses_artifacts = True
    status = renderer.add_param("status", "$(tasks.status)", "aggregate status of the run's tasks")
    args = ["--workflow", run.workflow, "--run", run.run, "--status", f"$(params.{status})"]
    for shown, task in tasks:
        param = renderer.add_param(f"{task}-status", f"$(tasks.{task}.status)", f"status of task {task}")
        args += ["--task", f"{shown}=$(params.{param})"]
    args += ["--artifacts-dir", f"$(workspaces.{ARTIFACTS}.path)/{task_name}"]
    return _internal_task(
        task_name,
        run,
        "summary",
        args,
        renderer,
        description="Record the run summary",
        result=(SUMMARY_RESULT, "the run's aggregate status"),
        timeout_seconds=SUMMARY_TIMEOUT_SECONDS,
    )


def tracking_end_task(task_name: str, scope: RunScope, run: RunInfo) -> TaskPlan:
    """The `finally` task that ends the run's MLflow parent run, FINISHED or FAILED after the
    aggregate status of the run's tasks (`stages.tracking_end`); only when `run.mlflow` is set."""
    assert run.mlflow is not None
    renderer = TaskRenderer(scope, None)
    status = renderer.add_param("status", "$(tasks.status)", "aggregate status of the run's tasks")
    return _internal_task(
        task_name,
        run,
        "tracking_end",
        ["--status", f"$(params.{status})"],
        renderer,
        description="End the run's MLflow run",
        result=(SUMMARY_RESULT, "the status the MLflow run was ended with (empty: ended elsewhere)"),
        env=run.mlflow.step_env(),
        timeout_seconds=TRACKING_END_TIMEOUT_SECONDS,
    )
