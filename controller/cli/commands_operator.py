"""`sluice operator` (the kopf operator) and `sluice crds` (the CustomResourceDefinitions)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer


def crds(
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Write one file per CRD into this folder instead of printing."
        ),
    ] = None,
) -> None:
    """Print the CustomResourceDefinitions of Workflow, Codeset and WorkflowRun (sluice.dev/v1alpha1)."""
    from controller.api.crds import all_crds, render, render_all

    if output_dir is None:
        sys.stdout.write(render_all())
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, crd in sorted(all_crds().items()):
        (output_dir / name).write_text(render(crd), encoding="utf-8")
        print(f"wrote {output_dir / name}", file=sys.stderr)


def operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Serve only these namespaces (repeatable; default: all)."),
    ] = None,
    peering: Annotated[
        str | None,
        typer.Option(
            help="Run with kopf peering under this name (for several replicas); default: standalone."
        ),
    ] = None,
    priority: Annotated[int, typer.Option(help="Peering priority of this replica.")] = 0,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, /healthz and /readyz (default 8080).")
    ] = None,
    metrics_host: Annotated[str | None, typer.Option(help="Address to serve metrics on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Most objects reconciled at the same time.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Log everything, including kopf's internals.")
    ] = False,
) -> None:
    """Run the operator against the cluster in KUBECONFIG (or in-cluster credentials), until stopped."""
    from controller.operator.main import OperatorError, run
    from controller.operator.settings import OperatorConfig

    config = OperatorConfig.from_env()
    changes = {
        key: value
        for key, value in {
            "metrics_port": metrics_port,
            "metrics_host": metrics_host,
            "worker_limit": workers,
        }.items()
        if value is not None
    }
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    try:
        run(
            config=config,
            namespaces=tuple(namespace or ()),
            peering_name=peering,
            priority=priority,
            verbose=verbose,
            debug=debug,
        )
    except OperatorError as exc:
        print(f"sluice operator: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("crds")(crds)
    app.command("operator")(operator)
