"""What a step program and the engine that runs it agree on, line by line and file by file.

Standard library only: the stages (which write) and the executors (which read) both import it.

- Progress: a training stage prints one line per epoch, `epoch N/M loss=... val_loss=...`
  (`progress_line`); the local executor reads such lines (`parse_progress`) into a progress bar
  and per-epoch metric curves. Other long work counts in its own unit (`PROGRESS_UNITS`: the
  three-body generator prints `simulation N/M`). Other lines are the step's log, nothing more.
- Results: a step writes each requested result to its file, with no trailing newline
  (`result_text`); numbers as a `when` gate reads them (`format_number`). All results of one
  task together stay within `MAX_RESULTS_BYTES`, Tekton's termination-message budget.
- Registered models: a model-typed stage parameter may name an MLflow registry version instead
  of a reference, `models:/NAME/VERSION` or `models:/NAME@ALIAS` (`parse_model_uri`; the
  validator rejects a malformed one, sluice/deploy resolves it, docs/mlflow.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

MAX_RESULTS_BYTES = 4096

MODEL_URI_PREFIX = "models:"
_MODEL_URI = re.compile(
    r"models:/(?P<name>[A-Za-z0-9][\w.-]{0,199})(?:/(?P<version>[1-9][0-9]{0,9})|@(?P<alias>[A-Za-z][\w-]{0,254}))"
)


def parse_model_uri(text: str) -> tuple[str, str | None, str | None] | None:
    """(name, version, alias) of `models:/NAME/VERSION` or `models:/NAME@ALIAS`; None otherwise."""
    match = _MODEL_URI.fullmatch(text)
    return (match["name"], match["version"], match["alias"]) if match else None


# What a progress line may count; epochs alone carry metric curves.
PROGRESS_UNITS = ("epoch", "simulation")
_PROGRESS_LINE = re.compile(rf"\b({'|'.join(PROGRESS_UNITS)})\s+(\d+)\s*/\s*(\d+)\b(.*)")
_METRIC = re.compile(r"([A-Za-z_][\w-]*)=([-+0-9.eE]+|nan|inf)")


@dataclass(frozen=True)
class Progress:
    """One progress line: `epoch` of `epochs` done (in `unit`s), with that step's metrics."""

    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    unit: str = "epoch"


def progress_line(epoch: int, epochs: int, metrics: Mapping[str, float], unit: str = "epoch") -> str:
    """`epoch 3/10 loss=0.25 val_loss=0.3`: each metric to 6 significant digits, in the given order."""
    if unit not in PROGRESS_UNITS:
        raise ValueError(f"progress unit {unit!r} is not one of {', '.join(PROGRESS_UNITS)}")
    return " ".join([f"{unit} {epoch}/{epochs}", *(f"{name}={value:.6g}" for name, value in metrics.items())])


def parse_progress(line: str) -> Progress | None:
    """The progress in a log line, or None when it is not a progress line. A metric whose value
    is not a number is left out."""
    match = _PROGRESS_LINE.search(line)
    if not match:
        return None
    metrics: dict[str, float] = {}
    for name, value in _METRIC.findall(match.group(4)):
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return Progress(int(match.group(2)), int(match.group(3)), metrics, match.group(1))


def format_number(value: float) -> str:
    """A number as a `when` gate reads it: plain decimal to 6 significant digits, no exponent;
    ValueError for NaN and infinities."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"refusing to write a non-finite result ({value})")
    text = format(Decimal(repr(float(f"{value:.6g}"))), "f")
    return text[:-2] if text.endswith(".0") else text


def result_text(value: str | float | int | bool) -> str:
    """A result file's content: `true`/`false`, a number by `format_number`, text as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)
