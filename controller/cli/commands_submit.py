"""`sluice submit WORKFLOW`: start a run of a Workflow on the cluster in KUBECONFIG.

WORKFLOW is the name of a Workflow already on the cluster (`kubectl apply -f` or a Codeset's
`sync.path` put it there): submit creates a WorkflowRun for it and prints the run's name. `--input`
values are typed and checked against the Workflow's declared inputs before anything is created, as
`sluice run` checks them. `--watch` then follows the run's steps until it ends.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.cluster import Cluster, ClusterError, NotFound
from controller.cli.options import InputsOption

WATCH_POLL_SECONDS = 1.0


def _fail(message: str, code: int = 1) -> Exception:
    print(f"sluice submit: {message}", file=sys.stderr)
    return typer.Exit(code)


def _workflow(cluster: Cluster, namespace: str, name: str) -> Any:
    """The typed Workflow of that name; exit 1 if there is none or it does not validate."""
    from controller.api.workflow import parse_workflow
    from controller.spec import SpecError

    try:
        body = cluster.get_sluice("workflows", namespace, name)
    except NotFound:
        known = sorted(
            str((w.get("metadata") or {}).get("name")) for w in cluster.list_sluice("workflows", namespace)
        )
        there = f" (Workflows there: {', '.join(known[:10])})" if known else " (it has none)"
        raise _fail(f"no Workflow {name!r} in namespace {namespace}{there}") from None
    try:
        return parse_workflow(body)
    except SpecError as exc:
        first = exc.diagnostics[0]
        raise _fail(f"Workflow {name} is not valid: {first.path}: {first.message}") from None


def checked_inputs(workflow: Any, raw: dict[str, str]) -> dict[str, Any]:
    """`--input` texts typed by the Workflow's declared inputs; exit 1 naming each problem."""
    from controller.cli.commands_compile import parse_inputs
    from controller.compiler.errors import Problems
    from controller.compiler.values import check_inputs

    values = parse_inputs(raw, workflow)
    problems = Problems(workflow)
    check_inputs(workflow, values, problems)
    for item in workflow.codeset_inputs:  # on a cluster a codeset input names a Codeset
        if not values.get(item.name) and not item.default:
            problems.error(
                f"$.inputs.{item.name}",
                "input.missing",
                f"codeset input {item.name!r} has no default Codeset: --input {item.name}=CODESET",
            )
    if problems.diagnostics:
        for diagnostic in problems.diagnostics:
            print(f"sluice submit: {diagnostic.path}: {diagnostic.message}", file=sys.stderr)
        raise typer.Exit(1)
    return values


def watch(cluster: Cluster, namespace: str, name: str, poll: float = WATCH_POLL_SECONDS) -> str:
    """Print the run's phase and each step's phase as they change, until the run ends; its phase."""
    from controller.api.workflowrun import TERMINAL_PHASES

    shown: dict[str, str] = {}
    while True:
        run = cluster.get_sluice("workflowruns", namespace, name)
        status = run.get("status") or {}
        for step in status.get("steps") or []:
            key, phase = f"step {step.get('name')}", str(step.get("phase"))
            if shown.get(key) != phase:
                shown[key] = phase
                message = f": {step['message']}" if step.get("message") and phase != "Succeeded" else ""
                print(f"{key}: {phase}{message}", flush=True)
        phase = str(status.get("phase") or "Pending")
        if shown.get("run") != phase:
            shown["run"] = phase
            print(f"run {name}: {phase}", flush=True)
        if phase in TERMINAL_PHASES:
            ready: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
            )
            if phase != "Succeeded" and ready.get("message"):
                print(f"  {ready.get('reason')}: {ready['message']}")
            for output, value in sorted((status.get("outputs") or {}).items()):
                print(f"  output {output} = {value}")
            return phase
        time.sleep(poll)


def submit(
    workflow: Annotated[str, typer.Argument(help="The name of a Workflow on the cluster.")],
    inputs: InputsOption = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Namespace of the Workflow [current kubeconfig context's]."),
    ] = None,
    watch_run: Annotated[
        bool,
        typer.Option("--watch", help="Follow the run's steps until it ends (exit 1 unless it succeeds)."),
    ] = False,
) -> None:
    """Start a run of a Workflow on the cluster in KUBECONFIG and print its name."""
    from controller.api.meta import API_VERSION, WORKFLOW_RUN
    from controller.cli.commands_compile import name_value_pairs
    from controller.compiler.naming import label_value
    from controller.settings import LABEL_WORKFLOW

    if workflow.endswith((".yaml", ".yml")) or Path(workflow).is_file():
        raise _fail(
            f"WORKFLOW is a Workflow's name; put the file on the cluster first: kubectl apply -f {workflow}",
            2,
        )
    raw = name_value_pairs(inputs or [], "--input")
    try:
        cluster = Cluster()
        ns = namespace or cluster.namespace
        values = checked_inputs(_workflow(cluster, ns, workflow), raw)
        run = {
            "apiVersion": API_VERSION,
            "kind": WORKFLOW_RUN,
            "metadata": {
                "generateName": f"{workflow[:57]}-",
                "namespace": ns,
                "labels": {LABEL_WORKFLOW: label_value(workflow)},
            },
            "spec": {"workflowRef": {"name": workflow}, "inputs": values},
        }
        name = str((cluster.create_sluice("workflowruns", ns, run).get("metadata") or {}).get("name"))
        print(name, flush=True)
        if watch_run and watch(cluster, ns, name) != "Succeeded":
            raise typer.Exit(1)
    except ClusterError as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
