"""`sluice validate` and `sluice schema`: the workflow language on the command line."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _files(paths: list[Path]) -> list[Path]:
    """Expand folders into their YAML files, sorted, so a whole repository can be checked."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


def validate(
    paths: Annotated[list[Path], typer.Argument(help="Workflow files or folders (native or FuseML).")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, or json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Validate workflow files; print every error as FILE:LINE:COL: $.path: message."""
    from controller.spec import SpecError, load_workflow

    results = []
    failed = False
    for path in _files(paths):
        try:
            workflow = load_workflow(str(path))
        except SpecError as exc:
            failed = True
            results.append(
                {
                    "file": str(path),
                    "valid": False,
                    "errors": [d.to_json() for d in exc.diagnostics],
                    "omitted": exc.omitted,
                }
            )
            if output_format is OutputFormat.text:
                for diagnostic in exc.diagnostics:
                    print(diagnostic.format(), file=sys.stderr)
                if exc.omitted:
                    print(f"{path}: ... and {exc.omitted} more error(s)", file=sys.stderr)
            continue
        results.append(
            {
                "file": str(path),
                "valid": True,
                "errors": [],
                "workflow": workflow.name,
                "dialect": workflow.dialect,
            }
        )
        if output_format is OutputFormat.text:
            print(f"{path}: ok ({workflow.dialect} workflow {workflow.name!r}, {len(workflow.steps)} steps)")
    if output_format is OutputFormat.json:
        print(json.dumps({"valid": not failed, "files": results}, indent=2))
    if not results:
        print("sluice validate: no workflow files found", file=sys.stderr)
        raise typer.Exit(1)
    raise typer.Exit(1 if failed else 0)


def schema() -> None:
    """Print the workflow JSON Schema (draft 2020-12)."""
    from controller.spec.schema import workflow_schema

    print(json.dumps(workflow_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)
