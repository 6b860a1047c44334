"""`sluice run`, `sluice runs`, `sluice report`, `sluice endpoints`: the local engine on the command line.

Cheap to import: the executor, the compiler and rich load inside the commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core


def _fail(message: str, code: int = 1) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(code)


def _home() -> Path:
    from controller.settings import sluice_home

    return sluice_home()


def run(
    path: Annotated[
        Path,
        typer.Argument(
            help="A workflow file, or Tekton YAML as `kubectl apply -f` takes it (a file or folder of "
            "PipelineRuns, TaskRuns, Pipelines, Tasks, StepActions, ConfigMaps, Secrets)."
        ),
    ],
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", metavar="NAME=VALUE", help="A workflow input's value (repeatable)."),
    ] = None,
    codeset: Annotated[
        list[str] | None,
        typer.Option(
            "--codeset",
            metavar="NAME=PATH_OR_URL[#REF]",
            help="A codeset input's folder or Git URL (repeatable).",
        ),
    ] = None,
    extensions: Annotated[
        Path | None, typer.Option("--extensions", help="FuseML extension descriptions.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every task, ignoring cached results.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: run, phase, steps, outputs.")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", min=1, show_default="number of cores", help="Tasks run at a time."),
    ] = None,
    containers: Annotated[
        str | None,
        typer.Option(
            "--containers",
            metavar="[=podman|docker]",
            help="Run each step in its image under its pod's restrictions (engine auto-detected).",
        ),
    ] = None,
    fail_on_skip: Annotated[
        bool,
        typer.Option("--fail-on-skip", help="Exit 1 when a condition skipped a step, saying which (CI)."),
    ] = False,
    pick: Annotated[
        str | None, typer.Option("--run", metavar="NAME", help="Tekton input: run only this run.")
    ] = None,
) -> None:
    """Run a workflow on this machine: the same PipelineRun a cluster runs, as local processes
    (steps run as you) or, with --containers, in their images."""
    from controller.executors.local.runner import RunError, execute_all, prepare_runs

    if containers is not None and containers not in ("auto", "podman", "docker"):
        raise _fail(
            f"sluice run: --containers takes podman or docker (--containers=podman), not {containers!r}"
        )
    try:
        prepared = prepare_runs(
            path, input_ or [], codeset or [], extensions, containers=containers is not None, pick=pick
        )
    except RunError as exc:
        raise _fail(str(exc)) from None
    code = execute_all(
        prepared,
        use_cache=not no_cache,
        json_out=json_out,
        parallel=parallel,
        containers=containers,
        fail_on_skip=fail_on_skip,
    )
    raise typer.Exit(code)


def runs(
    run_id: Annotated[str | None, typer.Argument(help="Show this run (default: list all).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List local runs, or show one: steps, timings, results, outputs, artifacts and their sha256."""
    from controller.executors.local.store import list_runs, load_run

    home = _home()
    if run_id is None:
        records = list_runs(home)
        if json_out:
            print(json.dumps([_summary(r) for r in records], indent=2))
            return
        if not records:
            print(f"no local runs in {home / 'runs'}")
            return
        print(f"{'RUN':<45} {'WORKFLOW':<22} {'PHASE':<10} {'STARTED':<21} DURATION")
        for r in records:
            s = _summary(r)
            print(
                f"{s['run']:<45} {s['workflow']:<22} {s['phase']:<10} "
                f"{s['startTime'] or '':<21} {s['duration']}"
            )
        return
    try:
        record = load_run(home, run_id)
    except FileNotFoundError as exc:
        raise _fail(f"sluice runs: {exc}") from None
    tracked = _mlflow_run(home, str(record.get("run", run_id)))
    if json_out:
        print(json.dumps({**record, "mlflow": tracked} if tracked else record, indent=2))
        return
    from controller.executors.local.runner import print_run

    print_run(record, sys.stdout, detail=True)
    if tracked:
        print(f"mlflow: run {tracked.get('run_id')} in {tracked.get('tracking_uri')}")
        print(f"  {tracked.get('ui')}")


def _mlflow_run(home: Path, run: str) -> dict[str, Any] | None:
    """The MLflow run of a local run, as its first tracked step recorded it (stages/tracking.py;
    read from the Sluice home: no mlflow import)."""
    try:
        value = json.loads((home / "mlflow" / "runs" / f"{run}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    duration = record.get("duration")
    return {
        "run": record.get("run", "?"),
        "workflow": record.get("workflow", "?"),
        "phase": record.get("phase", "?"),
        "startTime": record.get("startTime"),
        "duration": f"{duration:.1f}s" if isinstance(duration, int | float) else "",
    }


def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write [RUN folder/report.html].")
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run (loss curve, metrics, lineage) and print its path."""
    from controller.executors.local.report import write_report
    from controller.executors.local.store import load_run

    home = _home()
    try:
        record = load_run(home, run_id)
    except FileNotFoundError as exc:
        raise _fail(f"sluice report: {exc}") from None
    target = output or home / "runs" / run_id / "report.html"
    write_report(record, home / "runs" / run_id, target)
    print(target)


endpoints_app = typer.Typer(
    help="Local model servers started by `sluice run` deploy steps.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@endpoints_app.callback()
def endpoints(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    cluster: Annotated[
        bool,
        typer.Option("--cluster", help="List deployed models from the Workflows in KUBECONFIG's cluster."),
    ] = False,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="With --cluster: one namespace (default: all).")
    ] = None,
) -> None:
    """List local endpoints: name, URL, process, whether it still runs, drift of its traffic (stable,
    drifting, drifted, unknown), model folder."""
    if ctx.invoked_subcommand is not None:
        return
    if cluster:
        _cluster_endpoints(namespace, json_out)
        return
    from dataclasses import asdict

    from stages import endpoints as registry

    rows = [{**asdict(e), "alive": e.alive, "drift": e.drift_state()} for e in registry.list_endpoints()]
    _print_rows(
        rows,
        json_out,
        "no local endpoints",
        f"{'NAME':<30} {'URL':<52} {'PID':<8} {'STATE':<8} {'DRIFT':<9} MODEL",
        lambda row: (
            f"{row['name']:<30} {row['url']:<52} {row['container'] or row['pid']:<8} "
            f"{'running' if row['alive'] else 'stopped':<8} {row['drift']:<9} {row['model_dir']}"
        ),
    )


def _print_rows(
    rows: list[dict[str, Any]], json_out: bool, empty: str, header: str, line: Callable[[dict[str, Any]], str]
) -> None:
    """Rows as JSON, or a table (`header`, then `line(row)` for each), or `empty` when there are none."""
    if json_out:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(empty)
    else:
        print(header)
        for row in rows:
            print(line(row))


def _cluster_endpoints(namespace: str | None, json_out: bool) -> None:
    """FuseML's application registry: `status.endpoints` of every Workflow the operator reconciles."""
    from controller.cli.cluster import ClusterError, list_workflows

    try:
        workflows = list_workflows(namespace)
    except ClusterError as exc:
        raise _fail(f"sluice endpoints --cluster: {exc}") from None
    rows = [
        {
            "namespace": (wf.get("metadata") or {}).get("namespace", ""),
            "workflow": (wf.get("metadata") or {}).get("name", ""),
            "output": item.get("name", ""),
            "url": item.get("url", ""),
            "run": item.get("run", ""),
        }
        for wf in workflows
        for item in ((wf.get("status") or {}).get("endpoints") or [])
    ]
    _print_rows(
        rows,
        json_out,
        "no deployed models",
        f"{'NAMESPACE':<16} {'WORKFLOW':<24} {'OUTPUT':<18} {'RUN':<28} URL",
        lambda row: (
            f"{row['namespace']:<16} {row['workflow']:<24} {row['output']:<18} {row['run']:<28} {row['url']}"
        ),
    )


@endpoints_app.command("stop")
def endpoints_stop(name: Annotated[str, typer.Argument(help="The endpoint to stop.")]) -> None:
    """Stop a local model server and remove its registration."""
    from stages import endpoints as registry

    try:
        stopped = registry.stop_endpoint(name)
    except registry.EndpointError as exc:
        raise _fail(f"sluice endpoints stop: {exc}") from None
    if not stopped:
        raise _fail(f"sluice endpoints stop: no local endpoint named {name!r}")
    print(f"stopped {name}")


class _RunCommand(typer.core.TyperCommand):
    """`sluice run` whose `--containers` takes an optional value, which typer's parser cannot declare:
    a bare `--containers` is read as `--containers=auto` (the value only ever follows `=`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        args = [("--containers=auto" if a == "--containers" and i < end else a) for i, a in enumerate(args)]
        return list(super().parse_args(ctx, args))


def register(app: typer.Typer) -> None:
    app.command("run", cls=_RunCommand)(run)
    app.command("runs")(runs)
    app.command("report")(report)
    app.add_typer(endpoints_app, name="endpoints")
