"""MLflow tracking and model registry for the built-in stages (the optional `mlflow` extra).

Every function here is a no-op unless MLflow is installed *and* a tracking URI is configured
(`MLFLOW_TRACKING_URI`; the local executor sets one in the Sluice home when the extra is
installed, docs/mlflow.md). `mlflow` is imported lazily, only on that path: a stage without
tracking, `sluice --help` and `sluice validate` never import it.

One MLflow run per Sluice run: a parent run in the experiment named after the workflow, found
by its tag `sluice.run = <run id>` (the first stage creates it; separate step processes find it
by the tag), and one nested run per step (`mlflow.parentRunId`), named after the step. Both are
tagged with the workflow, the Sluice run id, the codeset commits (`SLUICE_CODESET_REVISIONS`,
when the executor gives them) and, once `prepare` has run, the dataset digest.

A tracking failure never fails a step: the stage prints one `mlflow:` warning line and goes on
(tracking is an observer of the run, not part of it), except where the step's own work needs the
registry: `deploy` of a `models:/` URI and `sluice/promote`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.protocol import parse_model_uri

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
RUN_TAG = "sluice.run"
WORKFLOW_TAG = "sluice.workflow"
STEP_TAG = "sluice.step"
ROLE_TAG = "sluice.role"
COMMITS_TAG = "sluice.codeset-commits"
DATASET_TAG = "sluice.dataset.sha256"
MODEL_ARTIFACT = "sluice-model"  # the Sluice model directory, as a run artifact (what deploy serves)
RECORD_FILE = "mlflow.json"  # in a model directory: where its registered version lives


class TrackingError(Exception):
    """The registry could not do what the step needs (only raised where the step depends on it)."""


def available() -> bool:
    """Whether the `mlflow` extra is installed (without importing it)."""
    return importlib.util.find_spec("mlflow") is not None


def enabled() -> bool:
    return bool(os.environ.get(TRACKING_URI_ENV)) and available()


def local_store(home: Path) -> tuple[str, Path]:
    """The default local store in the Sluice home: (tracking URI, artifacts folder)."""
    folder = home / "mlflow"
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


def ui_command(uri: str) -> str:
    """How to look at a store: `mlflow ui` on a local one, the server's URL otherwise."""
    if uri.startswith("sqlite:///"):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        return f"mlflow ui --backend-store-uri {uri} --default-artifact-root {artifacts}"
    return f"open {uri}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warn(message: str) -> None:
    print(f"mlflow: warning: {message}", file=sys.stderr, flush=True)


# ---- the run of a Sluice run, and a step's nested run ----


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a step talks to its tracking server only
    # an unreachable server costs a step seconds, not MLflow's default minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _client() -> Any:
    _quiet()
    uri = os.environ[TRACKING_URI_ENV]
    if uri.startswith("sqlite:///"):  # the local store: its folder may not exist yet
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import mlflow

    return mlflow.MlflowClient(tracking_uri=os.environ[TRACKING_URI_ENV])


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    uri = os.environ[TRACKING_URI_ENV]
    location = None
    if uri.startswith("sqlite:///"):  # no server: artifacts beside the database, not in the cwd
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:  # another step created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _run_tags() -> dict[str, str]:
    tags = {
        WORKFLOW_TAG: os.environ.get("SLUICE_WORKFLOW", ""),
        RUN_TAG: os.environ.get("SLUICE_RUN", ""),
    }
    commits = os.environ.get("SLUICE_CODESET_REVISIONS")
    if commits:
        tags[COMMITS_TAG] = commits
    return tags


def _parent(client: Any, experiment: str) -> str:
    """The parent run of this Sluice run: found by tag, created by the first step to ask."""
    run = os.environ.get("SLUICE_RUN", "")
    query = f"tags.`{RUN_TAG}` = '{run}' and tags.`{ROLE_TAG}` = 'run'"

    def oldest() -> str | None:
        found = client.search_runs([experiment], query, order_by=["attributes.start_time ASC"], max_results=1)
        return str(found[0].info.run_id) if found else None

    existing = oldest()
    if existing is not None:
        return existing
    created = client.create_run(
        experiment, tags={**_run_tags(), ROLE_TAG: "run"}, run_name=run or "sluice-run"
    ).info.run_id
    winner = oldest() or created
    if winner != created:  # two first steps raced: keep the older run
        client.delete_run(created)
    _remember(run, winner, experiment)
    return winner


def _remember(run: str, run_id: str, experiment: str) -> None:
    """`$SLUICE_HOME/mlflow/runs/<run>.json`, which `sluice runs RUN` reads (no mlflow import)."""
    home = os.environ.get("SLUICE_HOME")
    if not home or not run:
        return
    folder = Path(home) / "mlflow" / "runs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        uri = os.environ[TRACKING_URI_ENV]
        ui = ui_command(uri)
        if uri.startswith(("http://", "https://")):
            ui = f"open {uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
        record = {"run_id": run_id, "experiment_id": experiment, "tracking_uri": uri, "ui": ui}
        (folder / f"{run}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except OSError:
        pass


@dataclass
class StepRun:
    client: Any
    run_id: str
    parent_id: str

    def tag_run(self, key: str, value: str) -> None:
        for run_id in (self.run_id, self.parent_id):
            self.client.set_tag(run_id, key, value)


@contextmanager
def step_run(step: str) -> Iterator[StepRun | None]:
    """A nested run for this step (None when tracking is off or the server is unreachable)."""
    if not enabled():
        yield None
        return
    try:
        client = _client()
        experiment = _experiment(client, os.environ.get("SLUICE_WORKFLOW") or "sluice")
        parent = _parent(client, experiment)
        tags = {**_run_tags(), ROLE_TAG: "step", STEP_TAG: step, "mlflow.parentRunId": parent}
        run_id = client.create_run(experiment, tags=tags, run_name=step).info.run_id
    except Exception as exc:
        warn(f"tracking is off for this step: {type(exc).__name__}: {first_line(exc)}")
        yield None
        return
    status = "FAILED"
    try:
        yield StepRun(client, run_id, parent)
        status = "FINISHED"
    finally:
        try:
            client.set_terminated(run_id, status)
        except Exception as exc:
            warn(f"could not close run {run_id}: {exc}")


def guarded(what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a logging action; a failure is a warning, never a failed step."""
    try:
        return action(*args, **kwargs)
    except Exception as exc:
        warn(f"{what} failed: {type(exc).__name__}: {first_line(exc)}")
        return None


# ---- what each stage logs ----


def log_dataset(step: StepRun, manifest: dict[str, Any], directory: Path, source: str) -> None:
    """prepare: the dataset as an MLflow dataset input (digest = its sha256), rows and statistics."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    digest = str(manifest["sha256"])
    rows = manifest.get("rows", {})
    profile = {"rows": rows, "features": manifest.get("features"), "targets": manifest.get("targets")}
    schema = {
        "features": [f.get("name") for f in manifest.get("features", [])],
        "targets": [t.get("name") for t in manifest.get("targets", [])],
    }
    dataset = Dataset(
        name=source,
        digest=digest[:36],
        source_type="local" if not str(directory).startswith(("s3://", "pvc://")) else "uri",
        source=json.dumps({"uri": str(directory), "generator": source}),
        schema=json.dumps(schema),
        profile=json.dumps(profile, default=str),
    )
    training = [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])]
    step.client.log_inputs(step.run_id, training)
    step.client.log_inputs(step.parent_id, training)
    for key, value in rows.items():
        step.client.log_metric(step.run_id, f"rows_{key}", float(value))
    step.client.log_param(step.run_id, "source", source)
    step.tag_run(DATASET_TAG, digest)
    step.client.log_dict(step.run_id, manifest, "dataset-manifest.json")


def log_training(
    step: StepRun,
    params: dict[str, Any],
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    model: Any,
    sample: Any,
    model_dir: Path,
    register: str | None,
) -> dict[str, Any] | None:
    """train-keras: parameters, per-epoch metrics, final metrics, the loss plot, the Keras model
    (signature and input example) and the Sluice model directory; registers a version under
    `register`. Returns the registration record (written to the model directory) or None."""
    import mlflow
    import mlflow.tensorflow
    from mlflow.entities import Metric, Param
    from mlflow.models import infer_signature

    client, run_id = step.client, step.run_id
    timestamp = int(__import__("time").time() * 1000)
    client.log_batch(
        run_id,
        params=[Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in params.items()],
    )
    series = [
        Metric(key, float(value), timestamp, epoch)
        for key, values in history.items()
        for epoch, value in enumerate(values, start=1)
    ]
    # the final (evaluated, best-weights) values: at the last epoch, logged later, so they are
    # what MLflow shows as each metric's latest value
    last = max((len(values) for values in history.values()), default=0)
    final = [
        Metric(k, float(v), timestamp + 1, last) for k, v in metrics.items() if isinstance(v, int | float)
    ]
    for start in range(0, len(series), 900):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=series[start : start + 900])
    client.log_batch(run_id, metrics=final)
    # the parent run carries the parameters and final metrics too: runs are compared there
    client.log_batch(
        step.parent_id,
        metrics=final,
        params=[Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in params.items()],
    )
    for name in ("loss.png", "metrics.json", "history.json"):
        if (model_dir / name).is_file():
            client.log_artifact(run_id, str(model_dir / name))
    client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT)
    import keras

    # the logged model is the trained one without its compile state: the training loss is a
    # closure over the dataset's statistics, which a loader could not deserialise
    model = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, not compiled
    prediction = model.predict(sample, verbose=0)
    signature = infer_signature(sample, prediction)
    # the Keras flavour logs through the fluent API, in this step's run
    mlflow.set_tracking_uri(os.environ[TRACKING_URI_ENV])
    # (mlflow.tensorflow: mlflow.keras 3.17 fails to save an input example; the requirements are
    # given, not inferred, which would load the model again in a subprocess)
    from importlib.metadata import version as installed

    requirements = [f"tensorflow-cpu=={installed('tensorflow-cpu')}", f"keras=={installed('keras')}"]
    with mlflow.start_run(run_id=run_id):
        info = mlflow.tensorflow.log_model(
            model,
            name="model",
            signature=signature,
            input_example=sample,
            pip_requirements=requirements,
        )
    if not register:
        return None
    tags = {WORKFLOW_TAG: os.environ.get("SLUICE_WORKFLOW", ""), RUN_TAG: os.environ.get("SLUICE_RUN", "")}
    with contextlib.suppress(Exception):  # it exists
        client.create_registered_model(register, tags={WORKFLOW_TAG: tags[WORKFLOW_TAG]})
    version = client.create_model_version(
        register,
        info.model_uri,
        run_id=run_id,
        tags={**tags, "sluice.model-artifact": MODEL_ARTIFACT},
        model_id=info.model_id,
    )
    record = {
        "tracking_uri": os.environ[TRACKING_URI_ENV],
        "name": register,
        "version": str(version.version),
        "run_id": run_id,
        "model_uri": f"models:/{register}/{version.version}",
    }
    step.client.set_tag(step.parent_id, "sluice.model", record["model_uri"])
    return record


def log_evaluation(step: StepRun, metrics: dict[str, Any], probes: list[dict[str, Any]] | None) -> None:
    """evaluate: the metrics (also on the parent run, where runs are compared) and probe results."""
    from mlflow.entities import Metric

    timestamp = int(__import__("time").time() * 1000)
    values = [Metric(k, float(v), timestamp, 0) for k, v in metrics.items() if isinstance(v, int | float)]
    step.client.log_batch(step.run_id, metrics=values)
    step.client.log_batch(step.parent_id, metrics=values)
    if probes:
        step.client.log_dict(step.run_id, probes, "probes.json")


# ---- the registry: resolving models:/ URIs, setting aliases ----


def _registry_client() -> Any:
    if not available():
        raise TrackingError("models:/ URIs need the mlflow extra: pip install 'sluice[mlflow]'")
    if not os.environ.get(TRACKING_URI_ENV):
        raise TrackingError(f"models:/ URIs need {TRACKING_URI_ENV} (the MLflow server with the registry)")
    return _client()


def resolve_model(uri: str, into: Path) -> tuple[Path, dict[str, str]]:
    """Download the Sluice model directory of a registered version into `into`; return it and
    what the endpoint registry records (`model_uri`, `name`, `version`, `run_id`)."""
    parsed = parse_model_uri(uri)
    if parsed is None:
        raise TrackingError(f"{uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    name, version, alias = parsed
    client = _registry_client()
    try:
        if alias:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, version)
    except Exception as exc:
        raise TrackingError(f"{uri}: {first_line(exc)}") from None
    run_id = found.run_id
    artifact = (found.tags or {}).get("sluice.model-artifact", MODEL_ARTIFACT)
    if not run_id:
        raise TrackingError(f"{uri}: version {found.version} has no run to take the model directory from")
    into.mkdir(parents=True, exist_ok=True)
    try:
        local = client.download_artifacts(run_id, artifact, str(into))
    except Exception as exc:
        raise TrackingError(
            f"{uri}: version {found.version} (run {run_id}) has no {artifact}/ artifact: {first_line(exc)}"
        ) from None
    record = {"model_uri": uri, "name": name, "version": str(found.version), "run_id": str(run_id)}
    return Path(local), record


def set_alias(model_dir: Path, alias: str, name: str | None) -> dict[str, str]:
    """Point `alias` of the model's registered model at the version registered for `model_dir`."""
    path = model_dir / RECORD_FILE
    if not path.is_file():
        raise TrackingError(
            f"model {model_dir} was not registered (no {RECORD_FILE}): train it with MLflow tracking on "
            "(the mlflow extra and MLFLOW_TRACKING_URI)"
        )
    record = json.loads(path.read_text(encoding="utf-8"))
    registered = name or record["name"]
    if registered != record["name"]:
        raise TrackingError(f"model {model_dir} is registered as {record['name']!r}, not {registered!r}")
    client = _registry_client()
    client.set_registered_model_alias(registered, alias, record["version"])
    return {**record, "alias": alias}


def temporary_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
