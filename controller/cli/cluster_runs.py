"""WorkflowRuns on the cluster in KUBECONFIG: `sluice runs|logs|cancel --cluster`.

The cluster forms of the local commands, with the same RUN rules: a run's name, a unique prefix of
one, or `latest` (the newest by creation time), looked up in one namespace (`--namespace`, else the
current kubeconfig context's, else `default`). Logs come from the pods of the run's TaskRuns (the
TaskRun's `status.podName`), one container `step-<name>` after another, through the API server's
pod log endpoint; values of the Secrets those pods reference are masked as the local executor masks
them (when the caller may read those Secrets: the RBAC that lets you read a pod's log need not let
you read its Secrets).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from controller.api.workflowrun import DEFAULT_CANCEL, TERMINAL_PHASES
from controller.cli.cluster import Cluster, ClusterError, NotFound
from controller.cli.columns import print_columns
from controller.cli.runfilter import RunFilter
from controller.runref import LATEST, RunRefError, RunWords, pick_run

FOLLOW_POLL_SECONDS = 1.0


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def phase_of(run: dict[str, Any]) -> str:
    return str(_status(run).get("phase") or "Pending")


def workflow_of(run: dict[str, Any]) -> str:
    ref = (run.get("spec") or {}).get("workflowRef") or {}
    return str(ref.get("name") or "") if isinstance(ref, dict) else ""


def newest_first(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """By creation time, newest first (names break ties, also newest-looking first)."""
    return sorted(
        runs,
        key=lambda r: (str(_meta(r).get("creationTimestamp") or ""), str(_meta(r).get("name"))),
        reverse=True,
    )


def resolve_run(cluster: Cluster, namespace: str, ref: str) -> dict[str, Any]:
    """The WorkflowRun RUN means: its name, `latest`, or a unique prefix; ClusterError otherwise."""
    if ref != LATEST:
        try:
            return cluster.get_sluice("workflowruns", namespace, ref)
        except NotFound:
            pass
    runs = newest_first(cluster.list_sluice("workflowruns", namespace))
    words = RunWords(
        empty=f"no WorkflowRuns in namespace {namespace}",
        missing=lambda ref: f"no WorkflowRun in namespace {namespace} is {ref} or starts with it",
        plural="WorkflowRuns",
        part="name",
    )
    try:
        return runs[pick_run(ref, [str(_meta(r).get("name") or "") for r in runs], words)]
    except RunRefError as exc:
        raise ClusterError(str(exc)) from None


# --- sluice runs --cluster ------------------------------------------------------------------------


def list_runs(cluster: Cluster, namespace: str | None, filters: RunFilter) -> list[dict[str, Any]]:
    """The runs of `namespace` (None: of every namespace), newest first, filtered."""
    return filters.select(newest_first(cluster.list_sluice("workflowruns", namespace)), workflow_of, phase_of)


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """What `sluice runs --cluster --json` shows of a run."""
    status = _status(run)
    return {
        "run": _meta(run).get("name"),
        "namespace": _meta(run).get("namespace"),
        "workflow": workflow_of(run),
        "phase": phase_of(run),
        "created": _meta(run).get("creationTimestamp"),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
        "inputs": (run.get("spec") or {}).get("inputs") or {},
        "steps": status.get("steps") or [],
        "outputs": status.get("outputs") or {},
    }


def print_runs(
    runs: Sequence[dict[str, Any]], json_out: bool, namespace: str | None = "", filtered: bool = False
) -> None:
    """A table of runs; with `namespace` None (all namespaces) a NAMESPACE column first, as kubectl's."""
    if json_out:
        print(json.dumps([run_summary(r) for r in runs], indent=2))
        return
    if not runs:
        where = "in any namespace" if namespace is None else f"in namespace {namespace}"
        print(f"no{' matching' if filtered else ''} WorkflowRuns {where}")
        return
    rows = [
        (
            *(() if namespace is not None else (str(s["namespace"]),)),
            str(s["run"]),
            s["workflow"],
            s["phase"],
            str(s["startTime"] or "-"),
            str(s["completionTime"] or "-"),
        )
        for s in map(run_summary, runs)
    ]
    header = (
        *(() if namespace is not None else ("NAMESPACE",)),
        "RUN",
        "WORKFLOW",
        "PHASE",
        "STARTED",
        "FINISHED",
    )
    print_columns(header, rows)


def print_run(run: dict[str, Any], json_out: bool) -> None:
    """One run in detail: its steps with their phases and messages, and its outputs."""
    summary = run_summary(run)
    if json_out:
        print(json.dumps(summary, indent=2))
        return
    print(f"run {summary['run']} (workflow {summary['workflow']}): {summary['phase']}")
    for step in summary["steps"]:
        message = f"  {step['message']}" if step.get("message") else ""
        print(f"  {step.get('name', '?'):<20} {step.get('phase', '?'):<10}{message}")
    for name, value in sorted(summary["outputs"].items()):
        print(f"  output {name} = {value}")


# --- sluice logs --cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class StepLog:
    step: str
    container: str
    text: str | None  # None: no log (the reason is in `note`)
    note: str = ""


def _secret_names(pod: dict[str, Any]) -> set[str]:
    """Secrets a pod's containers read (env, envFrom) or mount."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
            if ref:
                names.add(str(ref))
        for source in container.get("envFrom") or []:
            ref = (source.get("secretRef") or {}).get("name")
            if ref:
                names.add(str(ref))
    for volume in spec.get("volumes") or []:
        ref = (volume.get("secret") or {}).get("secretName")
        if ref:
            names.add(str(ref))
    return names


def step_logs(
    cluster: Cluster, run: dict[str, Any], step: str | None, strict: bool = True
) -> Iterator[StepLog]:
    """The logs of the run's steps (or of one), step by step in workflow order, secrets masked.
    `strict`: a STEP the run does not list is an error (else: nothing yet, while following)."""
    from controller.executors.local.secrets import Redactor

    namespace, name = str(_meta(run).get("namespace")), str(_meta(run).get("name"))
    status = _status(run)
    steps = [str(s.get("name")) for s in status.get("steps") or [] if isinstance(s, dict)]
    if step is not None and step not in steps:
        if strict:
            raise ClusterError(f"run {name} has no step {step!r} (steps: {', '.join(steps) or 'none yet'})")
        return
    pipelinerun = str((status.get("pipelineRunRef") or {}).get("name") or name)
    taskruns = cluster.list_taskruns(namespace, f"tekton.dev/pipelineRun={pipelinerun}")
    by_task = {str(_meta(t).get("labels", {}).get("tekton.dev/pipelineTask")): t for t in taskruns}
    phases = {str(s.get("name")): str(s.get("phase")) for s in status.get("steps") or []}
    for task in [step] if step is not None else steps:
        taskrun = by_task.get(task)
        pod_name = str(_status(taskrun or {}).get("podName") or "")
        if not pod_name:
            yield StepLog(task, "", None, f"no pod ({phases.get(task, 'Pending').lower()})")
            continue
        try:
            pod = cluster.pod(namespace, pod_name)
        except NotFound:
            yield StepLog(task, "", None, f"its pod {pod_name} is gone (deleted after the run?)")
            continue
        secrets = [
            v for secret in sorted(_secret_names(pod)) for v in cluster.secret_values(namespace, secret)
        ]
        redact = Redactor(secrets).redact
        containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
        for container in (c for c in containers if c.startswith("step-")):
            try:
                text = cluster.pod_log(namespace, pod_name, container)
            except ClusterError as exc:
                yield StepLog(task, container, None, str(exc))
                continue
            yield StepLog(task, container, "".join(redact(line) for line in text.splitlines(keepends=True)))


def print_logs(
    logs: Iterator[StepLog], one_step: bool, printed: dict[tuple[str, str], int], final: bool = True
) -> None:
    """The lines not printed yet (`printed`: lines shown per step container); all steps: each line
    starts with `[step]`, as the local `sluice logs` prints them. Before the end (`final`), a
    line still being written waits for its newline, and steps without a log are not mentioned."""
    for log in logs:
        prefix = "" if one_step else f"[{log.step}] "
        if log.text is None:
            if final:
                print(f"{prefix}(no log: {log.note})", file=sys.stderr)
            continue
        lines = log.text.splitlines(keepends=True)
        key = (log.step, log.container)
        new = lines[printed.get(key, 0) :]
        if not final and new and not new[-1].endswith("\n"):
            new = new[:-1]
        for line in new:
            print(f"{prefix}{line.rstrip(chr(10))}", flush=True)
        printed[key] = printed.get(key, 0) + len(new)


# --- sluice cancel --cluster ----------------------------------------------------------------------


def cancel_run(cluster: Cluster, run: dict[str, Any], how: str = DEFAULT_CANCEL) -> str:
    """Ask the operator to cancel the run (`spec.status`); a line saying what happens."""
    name, namespace = str(_meta(run).get("name")), str(_meta(run).get("namespace"))
    phase = phase_of(run)
    if phase in TERMINAL_PHASES:
        raise ClusterError(f"run {name} already finished: {phase}")
    asked = (run.get("spec") or {}).get("status")
    if asked:
        return f"run {name} is already being cancelled (spec.status: {asked})"
    cluster.patch_sluice("workflowruns", namespace, name, {"spec": {"status": how}})
    then = "then its finally tasks run" if how == "CancelledRunFinally" else "finally tasks too"
    return f"run {name}: cancel requested ({how}: its running steps stop, {then})"


# --- the --cluster forms, for the commands that take them -------------------------------------------


def _fail(command: str, exc: ClusterError) -> Exception:
    import typer

    print(f"sluice {command} --cluster: {exc}", file=sys.stderr)
    return typer.Exit(1)


def runs_command(
    namespace: str | None, run_ref: str | None, filters: RunFilter, json_out: bool, all_namespaces: bool
) -> None:
    """`sluice runs --cluster [RUN]`: the WorkflowRuns of a namespace (`-A`: of all), newest first,
    or one in detail."""
    if all_namespaces and run_ref is not None:
        import typer

        # kubectl refuses `get -A NAME` too: a name (let alone a prefix) means one namespace's object
        print(
            "sluice runs --cluster: a RUN is looked up in one namespace: give --namespace, not -A",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    try:
        cluster = Cluster()
        ns = None if all_namespaces else namespace or cluster.namespace
        if run_ref is not None and ns is not None:
            print_run(resolve_run(cluster, ns, run_ref), json_out)
            return
        print_runs(list_runs(cluster, ns, filters), json_out, ns, filters.narrows)
    except ClusterError as exc:
        raise _fail("runs", exc) from None


def logs_command(namespace: str | None, run_ref: str, step: str | None = None, follow: bool = False) -> None:
    """`sluice logs --cluster RUN [STEP] [-f]`: the step logs of a run, from its TaskRuns' pods;
    with `follow`, polled every FOLLOW_POLL_SECONDS until the run has ended."""
    try:
        cluster = Cluster()
        run = resolve_run(cluster, namespace or cluster.namespace, run_ref)
        printed: dict[tuple[str, str], int] = {}
        while True:
            done = not follow or phase_of(run) in TERMINAL_PHASES
            print_logs(step_logs(cluster, run, step, strict=done), step is not None, printed, final=done)
            if done:
                return
            time.sleep(FOLLOW_POLL_SECONDS)
            run = cluster.get_sluice(
                "workflowruns", str(_meta(run).get("namespace")), str(_meta(run).get("name"))
            )
    except ClusterError as exc:
        raise _fail("logs", exc) from None


def cancel_command(namespace: str | None, run_ref: str, no_finally: bool = False) -> None:
    """`sluice cancel --cluster RUN`: set the run's spec.status; the operator cancels its PipelineRun."""
    try:
        cluster = Cluster()
        run = resolve_run(cluster, namespace or cluster.namespace, run_ref)
        print(cancel_run(cluster, run, "Cancelled" if no_finally else DEFAULT_CANCEL))
    except ClusterError as exc:
        raise _fail("cancel", exc) from None
