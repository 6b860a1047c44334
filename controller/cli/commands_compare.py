"""`sluice compare RUN RUN... [--json]`: runs side by side — inputs, outputs, metrics, step durations.

Metrics are each step's per-epoch values (the last one: `train.val_loss`) and its results that are
numbers (`evaluate.mae`). A row whose values differ between the runs is shown in bold.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from controller.cli.home import fail, local_home, resolve_run

SECTIONS = ("inputs", "outputs", "metrics", "durations")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _metrics(record: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for step in record.get("steps") or []:
        for key, values in (step.get("metrics") or {}).items():
            if values:
                found[f"{step['name']}.{key}"] = values[-1]
        for key, value in (step.get("results") or {}).items():
            number = _number(value)
            if number is not None:
                found[f"{step['name']}.{key}"] = number
    return found


def _durations(record: dict[str, Any]) -> dict[str, float | None]:
    found: dict[str, float | None] = {s["name"]: s.get("duration") for s in record.get("steps") or []}
    found["(run)"] = record.get("duration")
    return found


def comparison(records: list[dict[str, Any]]) -> dict[str, Any]:
    """{"runs": [ids], section: {row: [value per run, None where a run has none]}} for each section."""
    per_run: dict[str, list[dict[str, Any]]] = {
        "inputs": [r.get("params") or {} for r in records],
        "outputs": [r.get("outputs") or {} for r in records],
        "metrics": [_metrics(r) for r in records],
        "durations": [_durations(r) for r in records],
    }
    table: dict[str, Any] = {"runs": [r.get("run") for r in records]}
    for section in SECTIONS:
        rows: list[str] = []
        for values in per_run[section]:
            rows += [k for k in values if k not in rows]
        table[section] = {row: [values.get(row) for values in per_run[section]] for row in rows}
    return table


def _cell(value: Any, section: str) -> str:
    if value is None:
        return "-"
    if section == "durations" and isinstance(value, int | float):
        return f"{value:.1f}s"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value)


def compare(
    run_refs: Annotated[
        list[str], typer.Argument(metavar="RUN", help="Two or more runs: ids, unique prefixes or latest.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show runs side by side: inputs, outputs, metrics and step durations; differences in bold."""
    if len(run_refs) < 2:
        raise fail("sluice compare: give two runs or more", 2)
    home = local_home()
    records = [resolve_run("compare", home, ref) for ref in run_refs]
    table = comparison(records)
    if json_out:
        print(json.dumps(table, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # names and values are data: never read as rich markup

    view = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    view.add_column("", overflow="fold", max_width=28)
    for run in table["runs"]:
        view.add_column(str(run), overflow="fold")
    for section in SECTIONS:
        if not table[section]:
            continue
        view.add_row(Text(section, style="underline"), *([""] * len(records)))
        for row, values in table[section].items():
            cells = [_cell(v, section) for v in values]  # whole: a long value wraps in its column
            style = "bold" if len(set(cells)) > 1 else None
            view.add_row(Text(f"  {row}"), *(Text(c) for c in cells), style=style)
    Console(highlight=False).print(view)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
