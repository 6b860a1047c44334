"""MLflow tracking and model registry for the built-in stages (the optional `mlflow` extra).

Every function here is a no-op unless MLflow is installed *and* a tracking URI is configured
(`MLFLOW_TRACKING_URI`; the local executor sets one in the Sluice home when the extra is
installed, docs/mlflow.md). `mlflow` is imported lazily, only on that path: a stage without
tracking, `sluice --help` and `sluice validate` never import it.

A stage logs through `step_log(step, stage)`: records (plain JSON) that either go to the local
run's logger process through its spool (`controller.tracking_spool`; the step then never imports
MLflow) or are applied in the step's own process (stages/tracking_mlflow.py, which says what each
record becomes: one MLflow run per Sluice run, a nested run per step).

A tracking failure never fails a step: the stage (or the logger) prints one `mlflow: warning:`
line and goes on (tracking is an observer of the run, not part of it), except where the step's own
work needs the registry: `deploy` of a `models:/` URI and `sluice/promote`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller import tracking_spool
from controller.protocol import parse_model_uri
from controller.serving.tracking import CREDENTIAL_VARIABLES
from stages.tracking_mlflow import MODEL_ARTIFACT, TRACKING_URI_ENV, client, model_index

RECORD_FILE = "mlflow.json"  # in a model directory: where its registered version lives
REGISTRATION_WAIT_SECONDS = 900.0  # how long promote waits for the run's logger to register a model


class TrackingError(Exception):
    """The registry could not do what the step needs (only raised where the step depends on it)."""


def available() -> bool:
    """Whether the `mlflow` extra is installed (without importing it)."""
    return importlib.util.find_spec("mlflow") is not None


def enabled() -> bool:
    return bool(os.environ.get(TRACKING_URI_ENV)) and available()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warn(message: str) -> None:
    print(f"mlflow: warning: {message}", file=sys.stderr, flush=True)


# ---- a step's records: to the run's logger (a local run) or applied here ----


def _now_ms() -> int:
    return int(time.time() * 1000)


class StepLog:
    """What one step logs, as records (stages/tracking_mlflow.py says what each becomes).

    In a local run the executor names a spool (`SLUICE_MLFLOW_SPOOL`): records are appended there
    and the run's logger process logs them, so the step never imports MLflow. Elsewhere (a
    cluster pod, a container, a step run by hand) a Recorder in this process applies each record
    at once, and a failure is one warning line."""

    def __init__(self, step: str, spool: Path | None, recorder: Any = None) -> None:
        self.step = step
        self.spool = spool
        self.recorder = recorder

    @property
    def spooled(self) -> bool:
        return self.spool is not None

    def record(self, kind: str, **payload: Any) -> dict[str, Any] | None:
        """Log one record; returns what a `training` record registered when applied here."""
        record = {"kind": kind, "step": self.step, "time": _now_ms(), **payload}
        if self.spool is not None:
            try:
                tracking_spool.write_record(self.spool, record)
            except OSError as exc:
                warn(f"could not spool {kind} for the run's logger: {exc}")
            return None
        result: dict[str, Any] | None = guarded(f"logging the {kind}", self.recorder.apply, record)
        return result


def _spool() -> Path | None:
    """The run's spool, unless this step was given credentials for the tracking server or its
    artifact store (secrets in its `env`): the run's logger never has them (a host step could
    read them from its environment), so such a step logs by itself."""
    folder = os.environ.get(tracking_spool.SPOOL_ENV)
    if not folder or not Path(folder).is_dir():
        return None
    if any(os.environ.get(variable) for variable in CREDENTIAL_VARIABLES):
        return None
    return Path(folder)


@contextmanager
def step_log(step: str, stage: str) -> Iterator[StepLog | None]:
    """This step's log (None when tracking is off or the tracking server is unreachable); its
    nested run starts now and ends FINISHED, or FAILED when the step raises."""
    if not enabled():
        yield None
        return
    spool = _spool()
    if spool is not None:
        log = StepLog(step, spool)
    else:
        try:
            from stages.tracking_mlflow import Recorder

            recorder = Recorder()
            recorder.step_run(step, _now_ms())
        except Exception as exc:
            warn(f"tracking is off for this step: {type(exc).__name__}: {first_line(exc)}")
            yield None
            return
        log = StepLog(step, None, recorder)
    if spool is not None:
        log.record("start", stage=stage)
    status = "FAILED"
    try:
        yield log
        status = "FINISHED"
    finally:
        log.record("end", status=status)


def note_codeset(name: str, commit: str) -> None:
    """A checked-out codeset's commit, for the parent run's `sluice.codeset-commits` tag. Only
    through a local run's spool: a clone step does not import MLflow for one tag (elsewhere the
    steps read the commits from `SLUICE_CODESET_REVISIONS`)."""
    spool = _spool()
    if spool is not None and enabled():
        StepLog(f"clone-{name}", spool).record("codeset", name=name, commit=commit)


def guarded(what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a logging action; a failure is a warning, never a failed step."""
    try:
        return action(*args, **kwargs)
    except Exception as exc:
        warn(f"{what} failed: {type(exc).__name__}: {first_line(exc)}")
        return None


# ---- the registry: resolving models:/ URIs, setting aliases ----


def _registry_client() -> Any:
    if not available():
        raise TrackingError("models:/ URIs need the mlflow extra: pip install 'sluice[mlflow]'")
    if not os.environ.get(TRACKING_URI_ENV):
        raise TrackingError(f"models:/ URIs need {TRACKING_URI_ENV} (the MLflow server with the registry)")
    return client()


def resolve_model(uri: str, into: Path) -> tuple[Path, dict[str, str]]:
    """Download the Sluice model directory of a registered version into `into`; return it and
    what the endpoint registry records (`model_uri`, `name`, `version`, `run_id`)."""
    parsed = parse_model_uri(uri)
    if parsed is None:
        raise TrackingError(f"{uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    name, version, alias = parsed
    registry = _registry_client()
    try:
        if alias:
            found = registry.get_model_version_by_alias(name, alias)
        else:
            found = registry.get_model_version(name, version)
    except Exception as exc:
        raise TrackingError(f"{uri}: {first_line(exc)}") from None
    run_id = found.run_id
    artifact = (found.tags or {}).get("sluice.model-artifact", MODEL_ARTIFACT)
    if not run_id:
        raise TrackingError(f"{uri}: version {found.version} has no run to take the model directory from")
    into.mkdir(parents=True, exist_ok=True)
    try:
        local = registry.download_artifacts(run_id, artifact, str(into))
    except Exception as exc:
        raise TrackingError(
            f"{uri}: version {found.version} (run {run_id}) has no {artifact}/ artifact: {first_line(exc)}"
        ) from None
    record = {"model_uri": uri, "name": name, "version": str(found.version), "run_id": str(run_id)}
    return Path(local), record


def _training_pending(spool: Path, model_dir: Path) -> bool:
    for path in tracking_spool.pending(spool):
        record = tracking_spool.read_record(path)
        if record and record.get("kind") == "training" and Path(record.get("model_dir", "")) == model_dir:
            return True
    return False


def registration(model_dir: Path) -> dict[str, Any] | None:
    """The registered version of the model in `model_dir`: its `mlflow.json` (written when its
    step logged it itself), else what a local run's logger recorded in the Sluice home for this
    model file (a cached copy of a model finds its earlier registration there). In a local run,
    first waits while the run's logger has this model's training record still to log."""
    path = model_dir / RECORD_FILE
    if path.is_file():
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return found
    spool = _spool()
    if spool is not None:
        deadline = time.monotonic() + REGISTRATION_WAIT_SECONDS
        while (
            _training_pending(spool, model_dir)
            and tracking_spool.logger_alive(spool)
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
    index = model_index(os.environ.get("SLUICE_HOME"), model_dir)
    if index is None or not index.is_file():
        return None
    recorded: dict[str, Any] = json.loads(index.read_text(encoding="utf-8"))
    return recorded if recorded.get("tracking_uri") == os.environ.get(TRACKING_URI_ENV) else None


def set_alias(model_dir: Path, alias: str, name: str | None) -> dict[str, str]:
    """Point `alias` of the model's registered model at the version registered for `model_dir`."""
    record = registration(model_dir)
    if record is None:
        raise TrackingError(
            f"model {model_dir} was not registered: train it with MLflow tracking on "
            "(the mlflow extra and MLFLOW_TRACKING_URI; see the run's mlflow warnings)"
        )
    registered = name or record["name"]
    if registered != record["name"]:
        raise TrackingError(f"model {model_dir} is registered as {record['name']!r}, not {registered!r}")
    _registry_client().set_registered_model_alias(registered, alias, record["version"])
    return {**record, "alias": alias}


def temporary_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
