"""`sluice` finally task of a run tracked in MLflow: ends the run's parent MLflow run.

    python -m stages.tracking_end --status $(tasks.status) --result status=/tekton/results/status

On a cluster every built-in step logs to the tracking server itself and the first one creates the
parent run (stages/tracking_mlflow.py); nothing else would end it, so the compiler adds this
`finally` task when MLflow tracking is configured (docs/mlflow.md). Tekton runs it whatever
happened; the aggregate status of the run's tasks decides: Succeeded or Completed (some skipped)
-> FINISHED, anything else (Failed; None: cancelled or timed out) -> FAILED.

It ends only a run that is still RUNNING, so running twice ends it once; a run no step created
is left alone. In a local run the run's logger owns the parent run (it ends it after the last
record, with the run's status): a step that sees the run's spool (SLUICE_MLFLOW_SPOOL) leaves it
to the logger. Like all logging, a failure is one `mlflow: warning:` line, never a failed run.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller import tracking_spool
from stages import arguments
from stages.common import Results, run_stage

PROG = "sluice/mlflow-end"
OUTPUTS = ("status",)
FINISHED_STATUSES = ("Succeeded", "Completed")


def mlflow_status(tasks_status: str) -> str:
    return "FINISHED" if tasks_status in FINISHED_STATUSES else "FAILED"


def end_parent_run(status: str) -> tuple[str, str]:
    """End the parent run with `status`: what was done (as the step prints it), and the status the
    run was ended with (empty when this step ended none)."""
    from stages import tracking

    if not tracking.enabled():
        return "MLflow tracking is off: no run to end", ""
    spool = os.environ.get(tracking_spool.SPOOL_ENV)
    if spool and Path(spool).is_dir():
        return "the run's MLflow logger ends the MLflow run", ""
    from stages.tracking_mlflow import Recorder

    recorder = Recorder()
    parent = recorder.existing_parent()
    if parent is None:
        return "no step logged to MLflow: no run to end", ""
    current = recorder.client.get_run(parent).info.status
    if current != "RUNNING":
        return f"MLflow run {parent} already ended ({current})", ""
    recorder.client.set_terminated(parent, status)
    return f"MLflow run {parent} ended {status}", status


def main(argv: list[str] | None = None) -> None:
    parser = arguments.stage_parser(PROG, "End the run's MLflow run (the finally task of a tracked run).")
    parser.add_argument("--status", required=True, help="$(tasks.status): the run's tasks' aggregate status")
    arguments.add_contract_arguments(parser, OUTPUTS)
    args = parser.parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        from stages import tracking

        status = mlflow_status(args.status)
        done, ended = tracking.guarded("ending the MLflow run", end_parent_run, status) or ("", "")
        if done:
            print(f"mlflow-end: {done}", flush=True)
        results.write("status", ended)

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
