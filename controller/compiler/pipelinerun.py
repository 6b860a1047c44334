"""The compiler's entry point: a validated workflow -> one Tekton v1 PipelineRun.

Pure: no I/O, clock or randomness; identical arguments give an identical
object (and identical YAML through `to_yaml`). The pipelineSpec and every
taskSpec are embedded, so the PipelineRun alone is the whole plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from controller import settings
from controller.compiler.containers import pod_security_context
from controller.compiler.errors import Problems
from controller.compiler.extensions import ExtensionError, ExtensionRegistry, ResolvedExtension
from controller.compiler.fuseml import fuseml_task
from controller.compiler.internal import (
    SUMMARY_TIMEOUT_SECONDS,
    clone_task,
    credentials_workspace,
    summary_task,
    tracking_end_task,
)
from controller.compiler.modelstore import durable_run_volume
from controller.compiler.naming import (
    MAX_LABEL,
    UniqueNames,
    dns_label,
    label_value,
    param_name,
    run_name_for,
)
from controller.compiler.references import RUN_VOLUME, RunScope
from controller.compiler.tasks import RunInfo, TaskPlan, builtin_task, container_task
from controller.compiler.values import CodesetPlan, CodesetSource, check_inputs, param_text, plan_codesets
from controller.compiler.when import compile_when
from controller.serving.store import ModelStore
from controller.serving.tracking import MlflowTracking
from controller.spec.model import InputRef, Literal_, StepOutputRef, Workflow
from controller.units import format_duration, parse_quantity

TEKTON_API_VERSION = "tekton.dev/v1"
NAMESPACE_FROM_CONTEXT = "$(context.taskRun.namespace)"
ANNOTATION_GENERATION = f"{settings.API_GROUP}/generation"
ANNOTATION_REVISIONS = f"{settings.API_GROUP}/revisions"
ANNOTATION_STATIC_OUTPUTS = f"{settings.API_GROUP}/static-outputs"
_TASK_REF = re.compile(r"\$\(tasks\.([a-z0-9-]+)\.")


def resolve_extensions(
    workflow: Workflow, registry: ExtensionRegistry | None, problems: Problems
) -> dict[str, dict[str, ResolvedExtension]]:
    resolved: dict[str, dict[str, ResolvedExtension]] = {}
    for step in workflow.steps:
        for index, selector in enumerate(step.extensions):
            path = problems.step_path(step.name, f".extensions[{index}]")
            if registry is None:
                problems.error(
                    path,
                    "extension.no-registry",
                    f"step {step.name!r} needs extension {selector.name!r}: no extension registry was "
                    "given (--extensions PATH)",
                )
                continue
            try:
                resolved.setdefault(step.name, {})[selector.name] = registry.resolve(selector)
            except ExtensionError as exc:
                problems.error(path, "extension.unresolved", f"step {step.name!r}: {exc}")
    return resolved


def _dependencies(task: Mapping[str, Any]) -> set[str]:
    """Tasks this one waits for: runAfter, and result references in params and `when`."""
    found = set(task.get("runAfter", ()))
    texts = [p["value"] for p in task.get("params", ())]
    for expression in task.get("when", ()):
        texts += [expression["input"], *expression["values"]]
    for text in texts:
        found.update(_TASK_REF.findall(text))
    return found


def tasks_timeout_seconds(plans: list[TaskPlan]) -> int:
    """The longest chain of task timeouts (each attempt of a retried task gets its own timeout)."""
    by_name = {p.name: p for p in plans}
    finish: dict[str, int] = {}
    pending = {p.name: _dependencies(p.task) & set(by_name) for p in plans}
    while pending:
        ready = sorted(name for name, deps in pending.items() if deps <= set(finish))
        if not ready:
            raise ValueError("tasks form a cycle: " + ", ".join(sorted(pending)))
        for name in ready:
            plan = by_name[name]
            start = max((finish[d] for d in pending[name]), default=0)
            finish[name] = start + plan.timeout_seconds * (plan.retries + 1)
            del pending[name]
    return max(finish.values(), default=0)


def _with_when(task: dict[str, Any], when: list[dict[str, Any]]) -> dict[str, Any]:
    """Insert `when` after runAfter so every task reads in the same order."""
    if not when:
        return task
    ordered: dict[str, Any] = {}
    for key, value in task.items():
        if key in ("params", "workspaces", "retries", "timeout", "taskSpec") and "when" not in ordered:
            ordered["when"] = when
        ordered[key] = value
    return ordered


def _labels(workflow: Workflow, run_name: str, plans: dict[str, CodesetPlan]) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": "sluice",
        settings.LABEL_WORKFLOW: label_value(workflow.name),
        settings.LABEL_RUN: label_value(run_name),
    }
    first = next(iter(plans.values()), None)  # one label each: the first codeset input's
    if first is not None:
        labels[settings.LABEL_CODESET] = label_value(first.name)
        labels[settings.LABEL_REVISION] = label_value(first.revision)
    return {k: v for k, v in labels.items() if v}


def _workflow_results(
    workflow: Workflow, scope: RunScope, values: Mapping[str, Any], problems: Problems
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Pipeline results for outputs that name task results; the rest are known now (static)."""
    results, static = [], {}
    base = "$.spec" if workflow.dialect == "native" else "$"
    for index, output in enumerate(workflow.outputs):
        path = f"{base}.outputs[{index}].value"
        parts = []
        for part in output.value.parts:
            if isinstance(part, Literal_):
                parts.append(part.text)
            elif isinstance(part, InputRef) and part.attr is None and part.name in values:
                parts.append(param_text(values[part.name]))  # Tekton results may only name task results
            else:
                parts.append(scope.pipeline_ref(part, None, path) or "")
        text = "".join(parts)
        if any(isinstance(p, StepOutputRef) for p in output.value.parts):
            entry: dict[str, Any] = {"name": output.name, "type": "string", "value": text}
            if output.description:
                entry["description"] = output.description.strip()
            results.append(entry)
        else:
            static[output.name] = text
    return results, static


def _pipeline_params(workflow: Workflow, input_params: Mapping[str, str]) -> list[dict[str, Any]]:
    params = []
    for declared in workflow.inputs:
        if declared.type == "codeset":
            continue
        spec: dict[str, Any] = {"name": input_params[declared.name], "type": "string"}
        description = declared.description.strip() or f"input {declared.name} ({declared.type})"
        spec["description"] = description
        if declared.default is not None:
            spec["default"] = param_text(declared.default)
        params.append(spec)
    return params


def _run_volume_size(artifacts: str, codesets: bool) -> str:
    """The artifacts' size, plus room for the checkouts when the run has codesets."""
    if not codesets:
        return artifacts
    total = int(parse_quantity(artifacts) + parse_quantity(settings.DEFAULT_SOURCE_SIZE))
    for unit, factor in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if total % factor == 0:
            return f"{total // factor}{unit}"
    return str(total)


def _volume_claim(size: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": {k: v for k, v in labels.items() if v}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


# The largest PipelineRun the compiler emits (compact JSON). etcd refuses objects over 1.5 MiB, and
# Tekton copies the pipelineSpec into the PipelineRun's status (and each taskSpec into a TaskRun):
# a third of the limit leaves room for that copy, results and the operator's metadata.
MAX_PIPELINERUN_BYTES = 512 * 1024


def compile_run(
    workflow: Workflow,
    *,
    inputs: Mapping[str, Any] | None = None,
    codesets: Mapping[str, CodesetSource] | None = None,
    extensions: ExtensionRegistry | None = None,
    namespace: str | None = None,
    run_name: str | None = None,
    stages_image: str | None = None,
    allow_local_git: bool = False,
    allow_cluster_git_hosts: bool = False,
    model_store: ModelStore | None = None,
    mlflow: MlflowTracking | None = None,
    service_account: str | None = None,
    deployer_service_account: str | None = None,
) -> dict[str, Any]:
    """Compile a validated workflow into a `tekton.dev/v1` PipelineRun; CompileError lists every problem.

    Everything it depends on is an argument: `stages_image` (default `settings.DEFAULT_STAGES_IMAGE`),
    `allow_local_git` (admit file:// and loopback codeset URLs) and `allow_cluster_git_hosts`
    (admit in-cluster Git hosts such as `gitea.ml.svc`; the clone steps are given the same
    setting, `SLUICE_ALLOW_CLUSTER_GIT_HOSTS=1`) are read from the environment by the caller
    (`sluice compile`/`sluice run`, the operator's configuration), never here;
    so is `model_store`, the durable model storage deployed models are served from
    (`controller.compiler.modelstore`), and `mlflow`, the MLflow tracking every built-in stage
    logs to (`controller.serving.tracking`).
    `service_account` (default `settings.DEFAULT_STEP_SERVICE_ACCOUNT`) is what every task runs
    as; `deployer_service_account` (default `settings.DEFAULT_DEPLOYER_SERVICE_ACCOUNT`) is what
    tasks that manage serving resources run as (`taskRunSpecs`).
    """
    problems = Problems(workflow)
    given = dict(inputs or {})
    values = check_inputs(workflow, given, problems)
    plans = plan_codesets(
        workflow,
        values,
        codesets or {},
        problems,
        allow_local_git=allow_local_git,
        allow_cluster_git_hosts=allow_cluster_git_hosts,
    )
    resolved = resolve_extensions(workflow, extensions, problems)
    problems.raise_if_any()

    revisions = {name: plan.revision for name, plan in plans.items()}
    name = run_name or run_name_for(workflow, given, revisions)
    target_namespace = namespace or workflow.namespace
    run = RunInfo(
        workflow=workflow.name,
        run=name,
        namespace=target_namespace or NAMESPACE_FROM_CONTEXT,
        stages_image=stages_image or settings.DEFAULT_STAGES_IMAGE,
        model_store=model_store,
        mlflow=mlflow,
        allow_cluster_git_hosts=allow_cluster_git_hosts,
    )
    names = UniqueNames()
    step_tasks = {s.name: names.claim(dns_label(s.name)) for s in workflow.steps}
    clone_tasks = {p.input: names.claim(f"clone-{p.subdir}") for p in plans.values()}
    gate_names = {
        s.name: names.claim(f"{step_tasks[s.name][: MAX_LABEL - 5]}-gate")
        for s in workflow.steps
        if s.when is not None and s.when.numeric
    }
    summary_name = names.claim("summary")
    tracking_end_name = names.claim("mlflow-end") if mlflow is not None else None
    param_names = UniqueNames(max_length=255)
    input_params = {
        i.name: param_names.claim(param_name(i.name)) for i in workflow.inputs if i.type != "codeset"
    }
    scope = RunScope(workflow, problems, input_params, step_tasks, plans, clone_tasks, resolved)

    plans_out: list[TaskPlan] = [clone_task(plans[i], clone_tasks[i], scope, run) for i in clone_tasks]
    for step in workflow.steps:
        when, gate = compile_when(step, gate_names.get(step.name), scope, run, problems)
        if gate is not None:
            plans_out.append(gate)
        if workflow.dialect == "fuseml":
            plan = fuseml_task(step, step_tasks[step.name], scope, run, problems)
        elif step.uses is not None:
            plan = builtin_task(step, step_tasks[step.name], scope, run, problems)
        else:
            plan = container_task(step, step_tasks[step.name], scope, run, problems)
        plan.task = _with_when(plan.task, when)
        plans_out.append(plan)
    results, static_outputs = _workflow_results(workflow, scope, values, problems)
    problems.raise_if_any()

    shown = {task: step for step, task in step_tasks.items()}
    summary = summary_task(summary_name, [(shown.get(p.name, p.name), p.name) for p in plans_out], scope, run)
    tasks_seconds = tasks_timeout_seconds(plans_out)
    pipeline_spec: dict[str, Any] = {}
    if workflow.description:
        pipeline_spec["description"] = workflow.description.strip()
    params = _pipeline_params(workflow, input_params)
    if params:
        pipeline_spec["params"] = params
    # One claim-backed workspace per run, bound by tasks at subPaths `artifacts` and `source`
    # (never two claims in one TaskRun: see RUN_VOLUME).
    workspaces: list[dict[str, Any]] = [
        {
            "name": RUN_VOLUME,
            "description": "the run's volume: datasets, models and reports; checked-out codesets",
        }
    ]
    run_workspaces: list[dict[str, Any]] = [
        {
            "name": RUN_VOLUME,
            "volumeClaimTemplate": _volume_claim(
                _run_volume_size(workflow.artifacts_size or settings.DEFAULT_ARTIFACTS_SIZE, bool(plans)),
                # the claim Tekton makes from it is labelled like everything Sluice creates
                {settings.LABEL_WORKFLOW: label_value(workflow.name), settings.LABEL_RUN: label_value(name)},
            ),
        }
    ]
    for codeset in plans.values():
        if codeset.secret_name:
            workspaces.append(
                {"name": credentials_workspace(codeset), "description": f"git credentials of {codeset.input}"}
            )
            run_workspaces.append(
                {"name": credentials_workspace(codeset), "secret": {"secretName": codeset.secret_name}}
            )
    if model_store is not None and model_store.kind == "pvc":
        # the run's volume: a folder of the durable claim
        run_workspaces[0] = durable_run_volume(run_workspaces[0]["name"], model_store, workflow.name, name)
    pipeline_spec["workspaces"] = workspaces
    pipeline_spec["tasks"] = [p.task for p in plans_out]
    pipeline_spec["finally"] = [summary.task]
    if tracking_end_name is not None:  # the MLflow parent run the steps created ends with the run
        pipeline_spec["finally"].append(tracking_end_task(tracking_end_name, scope, run).task)
    if results:
        pipeline_spec["results"] = results

    metadata: dict[str, Any] = {"name": name}
    if target_namespace:
        metadata["namespace"] = target_namespace
    metadata["labels"] = _labels(workflow, name, plans)
    annotations = {ANNOTATION_GENERATION: str(workflow.generation)}
    if revisions:
        annotations[ANNOTATION_REVISIONS] = json.dumps(revisions, sort_keys=True, separators=(",", ":"))
    if static_outputs:
        annotations[ANNOTATION_STATIC_OUTPUTS] = json.dumps(
            static_outputs, sort_keys=True, separators=(",", ":")
        )
    metadata["annotations"] = annotations
    spec: dict[str, Any] = {}
    run_params = [
        {"name": input_params[i.name], "value": param_text(values[i.name])}
        for i in workflow.inputs
        if i.type != "codeset" and i.name in values
    ]
    if run_params:
        spec["params"] = run_params
    spec["pipelineSpec"] = pipeline_spec
    spec["workspaces"] = run_workspaces
    # Least privilege per task: every task runs as a ServiceAccount with no API rights and no
    # token (the pod template says so whatever the ServiceAccount says); only tasks that manage
    # serving resources run as the deployer, with its token.
    spec["taskRunTemplate"] = {
        "serviceAccountName": service_account or settings.DEFAULT_STEP_SERVICE_ACCOUNT,
        "podTemplate": {"securityContext": pod_security_context(), "automountServiceAccountToken": False},
    }
    deployers = [p.name for p in plans_out if p.deployer]
    if deployers:
        deployer = deployer_service_account or settings.DEFAULT_DEPLOYER_SERVICE_ACCOUNT
        spec["taskRunSpecs"] = [
            {
                "pipelineTaskName": task,
                "serviceAccountName": deployer,
                "podTemplate": {"automountServiceAccountToken": True},
            }
            for task in deployers
        ]
    spec["timeouts"] = {
        "pipeline": format_duration(tasks_seconds + SUMMARY_TIMEOUT_SECONDS),
        "tasks": format_duration(tasks_seconds),
        "finally": format_duration(SUMMARY_TIMEOUT_SECONDS),
    }
    pipelinerun = {
        "apiVersion": TEKTON_API_VERSION,
        "kind": "PipelineRun",
        "metadata": metadata,
        "spec": spec,
    }
    size = len(json.dumps(pipelinerun, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PIPELINERUN_BYTES:
        problems.error(
            problems.base,
            "compile.too-large",
            f"the compiled PipelineRun would be {size // 1024} KiB; at most "
            f"{MAX_PIPELINERUN_BYTES // 1024} KiB are allowed (Tekton copies the spec into its status "
            "and each TaskRun, and etcd stores at most 1.5 MiB per object): split the workflow or "
            "shorten its scripts",
        )
        problems.raise_if_any()
    return pipelinerun
