"""What `sluice run --json` prints of one run (a list of these for several runs of Tekton input)."""

from __future__ import annotations

from typing import Any

STEP_KEYS = (
    *("name", "phase", "reason", "cached", "startTime", "completionTime", "duration"),
    *("results", "message"),
)


def json_summary(data: dict[str, Any], kind: str = "PipelineRun") -> dict[str, Any]:
    """What `sluice run --json` prints of a run: `kind` is PipelineRun, or TaskRun for one of Tekton
    input (its task's results are the run's outputs)."""
    return {
        "kind": kind,
        "run": data["run"],
        "phase": data["phase"],
        "steps": [{k: s[k] for k in STEP_KEYS} for s in data["steps"]],
        "outputs": data["outputs"],
        "message": data["message"],
        "warnings": data.get("warnings", []),  # e.g. MLflow logging that failed (docs/mlflow.md)
        "folder": data["folder"],
    }
