"""`sluice runs [RUN]`, `sluice runs delete RUN...`, `sluice runs prune --keep N`, `sluice report RUN`:
the local runs in the Sluice home.

`sluice runs` is a group whose default command lists (or, given a RUN, shows) runs, so that
`sluice runs RUN` and `sluice runs delete RUN` both read as written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from controller.cli.cluster import AllNamespacesOption, ClusterOption, NamespaceOption, local_only
from controller.cli.home import fail, local_home, resolve_run
from controller.cli.runfilter import PHASES, RunFilter, parse_phase

LIST_COMMAND = "list"


class _RunsGroup(typer.core.TyperGroup):
    """Anything after `sluice runs` that is not one of its subcommands (a RUN, a flag) goes to
    `list`; `-h`/`--help` alone shows the group's help."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if (args and args[0] in self.commands) or args in (["--help"], ["-h"]):
            return list(super().parse_args(ctx, args))
        return list(super().parse_args(ctx, [LIST_COMMAND, *args]))


runs_app = typer.Typer(
    cls=_RunsGroup,
    help="Local runs: list them, show one, delete or prune them. `sluice runs [RUN]` lists or shows.",
    no_args_is_help=False,
)


@runs_app.command(LIST_COMMAND)
def runs(
    run_ref: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Show this run: an id, a unique prefix or latest.")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")
    ] = None,
    phase: Annotated[
        str | None, typer.Option("--phase", help=f"Only runs in this phase: {', '.join(PHASES)}.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many, newest first.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    cluster: ClusterOption = False,
    namespace: NamespaceOption = None,
    all_namespaces: AllNamespacesOption = False,
) -> None:
    """List local runs, newest first (the default), or show one: steps, timings, results, lineage.
    With --cluster: the WorkflowRuns of a namespace (or, -A, of all) of the cluster in KUBECONFIG."""
    filters = RunFilter(workflow, parse_phase(phase), limit)
    if cluster:
        from controller.cli.cluster_runs import runs_command

        runs_command(namespace, run_ref, filters, json_out, all_namespaces)
        return
    local_only("runs", namespace, all_namespaces)
    from controller.executors.local.store import list_runs

    home = local_home()
    if run_ref is not None:
        _show(home, resolve_run("runs", home, run_ref, workflow), json_out)
        return
    records = filters.select(
        list_runs(home), lambda r: str(r.get("workflow") or ""), lambda r: str(r.get("phase") or "")
    )
    if json_out:
        print(json.dumps([_summary(r) for r in records], indent=2))
        return
    if not records:
        print(f"no{' matching' if filters.narrows else ''} local runs in {home / 'runs'}")
        return
    from controller.cli.columns import print_columns

    rows = [
        [str(s["run"]), str(s["workflow"]), str(s["phase"]), str(s["startTime"] or ""), str(s["duration"])]
        for s in map(_summary, records)
    ]
    print_columns(["RUN", "WORKFLOW", "PHASE", "STARTED", "DURATION"], rows)


def _show(home: Path, record: dict[str, Any], json_out: bool) -> None:
    tracked = _mlflow_run(home, str(record.get("run")))
    if json_out:
        print(json.dumps({**record, "mlflow": tracked} if tracked else record, indent=2))
        return
    from controller.executors.local.runprint import print_run

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


@runs_app.command("delete")
def delete(
    run_refs: Annotated[
        list[str], typer.Argument(metavar="RUN", help="Runs: ids, unique prefixes or latest.")
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Also delete runs whose model is being served, stopping the server."),
    ] = False,
) -> None:
    """Delete runs and the cached artifacts no remaining run uses (not running runs; not runs
    whose model a local endpoint serves, unless --force stops it)."""
    home = local_home()
    records = {str(r["run"]): r for r in (resolve_run("runs delete", home, ref) for ref in run_refs)}
    for name, record in records.items():
        if record.get("phase") in ("Pending", "Running"):
            raise fail(
                f"sluice runs delete: run {name} is {record['phase'].lower()}: `sluice cancel {name}` first"
            )
        serving = _serving(record)
        if serving and not force:
            raise fail(
                f"sluice runs delete: run {name} serves endpoint {', '.join(serving)}: stop it"
                f" (`sluice endpoints stop {serving[0]}`) or give --force"
            )
    for record in records.values():
        _stop_endpoints(_serving(record, alive_only=False))
    _removed(home, list(records))


@runs_app.command("prune")
def prune(
    keep: Annotated[int, typer.Option("--keep", min=0, help="How many of the newest runs to keep.")],
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Prune only this workflow's runs.")
    ] = None,
) -> None:
    """Delete all but the newest KEEP runs and the cached artifacts no remaining run uses (running
    runs and runs whose model a local endpoint serves are kept)."""
    from controller.executors.local.store import list_runs

    home = local_home()
    doomed = []
    for record in list_runs(home, workflow)[keep:]:
        serving = _serving(record)
        if record.get("phase") in ("Pending", "Running") or serving:
            why = f"serves endpoint {', '.join(serving)}" if serving else str(record.get("phase")).lower()
            print(f"kept {record['run']}: {why}", file=sys.stderr)
            continue
        doomed.append(record)
    for record in doomed:
        _stop_endpoints(_serving(record, alive_only=False))  # registrations of stopped servers only
    _removed(home, [str(r["run"]) for r in doomed])


def _serving(record: dict[str, Any], alive_only: bool = True) -> list[str]:
    """The local endpoints whose model folder is inside this run's folder (live ones, or all)."""
    from stages import endpoints as registry

    folder = Path(str(record.get("folder", "")))
    return [
        e.name
        for e in registry.list_endpoints()
        if Path(e.model_dir).is_relative_to(folder) and (e.alive or not alive_only)
    ]


def _stop_endpoints(names: list[str]) -> None:
    from stages import endpoints as registry

    for name in names:
        registry.stop_endpoint(name)
        print(f"endpoint {name} stopped and removed", file=sys.stderr)


def _removed(home: Path, names: list[str]) -> None:
    from controller.executors.local.cleanup import delete_runs

    removed = delete_runs(home, names)
    for name in removed.runs:
        print(f"deleted {name}")
    print(
        f"{len(removed.runs)} run(s) deleted; {removed.entries} cache entries and {removed.objects} cached"
        f" files no other run uses removed; {removed.bytes / 1e6:.1f} MB freed"
    )


def report(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="The run: an id, a unique prefix or latest.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write [RUN folder/report.html].")
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run (loss curve, metrics, lineage) and print its path."""
    from controller.executors.local.report import write_report

    home = local_home()
    record = resolve_run("report", home, run_ref)
    folder = Path(record["folder"])
    target = output or folder / "report.html"
    write_report(record, folder, target)
    print(target)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("report")(report)
