"""`sluice run`, `sluice endpoints`: the local engine on the command line (runs: commands_runs.py).

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

from controller.cli.home import local_home
from controller.cli.options import ExtensionsOption, InputsOption


def _fail(message: str, code: int = 1) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(code)


def run(
    path: Annotated[
        Path,
        typer.Argument(
            help="A workflow file, or Tekton YAML as `kubectl apply -f` takes it (a file or folder of "
            "PipelineRuns, TaskRuns, Pipelines, Tasks, StepActions, ConfigMaps, Secrets)."
        ),
    ],
    input_: InputsOption = None,
    codeset: Annotated[
        list[str] | None,
        typer.Option(
            "--codeset",
            metavar="NAME=PATH_OR_URL[#REF]",
            help="A codeset input's folder or Git URL (repeatable).",
        ),
    ] = None,
    extensions: ExtensionsOption = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every task, ignoring cached results.")
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object (kind, run, phase, steps, outputs); a list for several runs.",
        ),
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
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Run in the background: print the run id and return at once."),
    ] = False,
) -> None:
    """Run a workflow on this machine: the same PipelineRun a cluster runs, as local processes
    (steps run as you) or, with --containers, in their images."""
    from controller.executors.local.runner import RunError, execute_all, prepare_runs

    if containers is not None and containers not in ("auto", "podman", "docker"):
        raise _fail(
            f"sluice run: --containers takes podman or docker (--containers=podman), not {containers!r}",
            code=2,  # a bad option value is a usage error, as docs/local-runs.md's exit statuses say
        )
    try:
        prepared = prepare_runs(
            path, input_ or [], codeset or [], extensions, containers=containers is not None, pick=pick
        )
    except RunError as exc:
        raise _fail(str(exc)) from None
    home = local_home()
    if detach:
        from controller.executors.local.runner import detach_run

        if len(prepared) != 1:
            raise _fail(f"sluice run --detach: {path} holds {len(prepared)} runs; choose one with --run NAME")
        try:
            run_id = detach_run(prepared[0], home)
        except (RunError, OSError) as exc:
            raise _fail(f"sluice run --detach: {exc}") from None
        if run_id is not None:  # this process: say which run, and leave it running in the background
            print(run_id)
            raise typer.Exit(0)
    code = execute_all(
        prepared,
        use_cache=not no_cache,
        json_out=json_out,
        parallel=parallel,
        home=home,
        containers=containers,
        fail_on_skip=fail_on_skip,
    )
    raise typer.Exit(code)


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
        ("NAME", "URL", "PID", "STATE", "DRIFT", "MODEL"),
        lambda row: (
            row["name"],
            row["url"],
            str(row["container"] or row["pid"]),
            "running" if row["alive"] else "stopped",
            row["drift"],
            row["model_dir"],
        ),
    )


def _print_rows(
    rows: list[dict[str, Any]],
    json_out: bool,
    empty: str,
    header: tuple[str, ...],
    cells: Callable[[dict[str, Any]], tuple[str, ...]],
) -> None:
    """Rows as JSON, or a table (`header`, then `cells(row)` for each, columns fitted to their
    widest cell: a container name or a long workflow name keeps the others in line), or `empty`."""
    from controller.cli.columns import print_columns

    if json_out:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(empty)
    else:
        print_columns(header, [cells(row) for row in rows])


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
        ("NAMESPACE", "WORKFLOW", "OUTPUT", "RUN", "URL"),
        lambda row: (row["namespace"], row["workflow"], row["output"], row["run"], row["url"]),
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
    app.add_typer(endpoints_app, name="endpoints")
