"""The MLflow logger of a local run: `python -m stages.tracking_logger SPOOL PARENT_PID`.

The local executor starts it beside the run's first step when tracking is on (docs/mlflow.md),
with the environment a host step gets. It imports MLflow and opens the store while the steps
work, then logs the records they append to the spool (`controller.tracking_spool`) in order,
and exits once the executor has closed the spool and every record is logged, or once its parent
(PARENT_PID, the `sluice run` process) is gone without closing it (killed outright). Steps pay for a
JSON file, not for `import mlflow` and a store per process.

When a train-keras step starts, the logger imports the TensorFlow flavour at once, so the
model's logging finds it loaded. A record that fails to log is one `mlflow: warning:` line on
stderr (the executor shows these in the run summary); the run itself never fails for it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from controller import tracking_spool
from stages.tracking import first_line, warn
from stages.tracking_mlflow import Recorder

POLL_SECONDS = 0.1
# the stages whose logging needs the TensorFlow flavour: imported when one starts, not when it ends
FLAVOUR_STAGES = {"train-keras"}


def _load_flavour() -> None:
    try:
        import mlflow.tensorflow  # noqa: F401
    except Exception as exc:  # the model's logging will say what is wrong
        warn(f"the TensorFlow flavour did not load: {type(exc).__name__}: {first_line(exc)}")


def serve(spool: Path, parent: int) -> int:
    done = spool / tracking_spool.DONE
    done.mkdir(exist_ok=True)
    (spool / tracking_spool.PID_FILE).write_text(str(os.getpid()), encoding="utf-8")
    recorder: Recorder | None
    try:
        recorder = Recorder()
    except Exception as exc:
        warn(f"tracking is off for this run: {type(exc).__name__}: {first_line(exc)}")
        recorder = None
    mounts = os.environ.get(tracking_spool.MOUNTS_ENV)  # the steps run in containers
    while True:
        orphaned = os.getppid() != parent  # killed without closing the spool: log what came, stop
        closed = tracking_spool.is_closed(spool) or orphaned  # read before listing the records
        for path in tracking_spool.pending(spool):
            record = tracking_spool.read_record(path)
            if record is not None and mounts:
                record = _on_host(Path(mounts), record)
            if recorder is not None and record is not None and not _apply(recorder, record):
                # the store never answered (no experiment, no run): the rest would only fail slowly
                warn("tracking is off for the rest of this run")
                recorder = None
            shutil.move(str(path), done / path.name)
        if closed:
            if recorder is not None and not orphaned:
                _end_run(recorder, tracking_spool.closing_status(spool))
            return 0
        time.sleep(POLL_SECONDS)


def _on_host(mounts: Path, record: dict[str, object]) -> dict[str, object] | None:
    """A container step's record with its paths as this machine sees them; None (and a warning)
    when one is not inside the step's mounts."""
    try:
        return tracking_spool.on_host(mounts, record)
    except ValueError as exc:
        warn(f"{record.get('step')}: the {record.get('kind')} is not logged: {exc}")
        return None


def _apply(recorder: Recorder, record: dict[str, object]) -> bool:
    """Log one record (a failure is a warning); False once the store has never answered."""
    kind, step = record.get("kind"), record.get("step")
    if kind == "start" and record.get("stage") in FLAVOUR_STAGES:
        _load_flavour()
    try:
        registered = recorder.apply(record)
    except Exception as exc:
        warn(f"{step}: logging the {kind} failed: {type(exc).__name__}: {first_line(exc)}")
        return recorder.reached
    if registered is not None:
        uri, run_id = registered["model_uri"], registered["run_id"]
        print(f"mlflow: {step}: registered {uri} (MLflow run {run_id})", flush=True)
    return True


def _end_run(recorder: Recorder, status: str) -> None:
    """The parent run ends with the Sluice run (when anything was logged for it)."""
    if recorder.steps or recorder.commits:
        try:
            recorder.client.set_terminated(recorder.parent(), status)
        except Exception as exc:
            warn(f"ending the MLflow run failed: {type(exc).__name__}: {first_line(exc)}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not Path(args[0]).is_dir() or not args[1].isdigit():
        print("usage: python -m stages.tracking_logger SPOOL_FOLDER PARENT_PID", file=sys.stderr)
        return 2
    return serve(Path(args[0]), int(args[1]))


if __name__ == "__main__":
    status = main()
    # Every record is logged (each call committed), so the run's wait ends here: the interpreter's
    # teardown with TensorFlow and MLflow loaded takes seconds and logs nothing more.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
