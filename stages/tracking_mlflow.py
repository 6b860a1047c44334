"""What a tracking record becomes in MLflow: `Recorder.apply(record)` (imports mlflow).

A step describes what it logs as records (plain JSON, `stages.tracking`); a Recorder turns them
into MLflow calls. The same records are applied in the step's own process (a cluster pod, a step
run by hand) or, in a local run, by the run's logger process (`stages.tracking_logger`), which
imports MLflow once for the whole run instead of once per step.

One MLflow run per Sluice run: a parent run in the experiment named after the workflow, found by
its tag `sluice.run = <run id>` (separate step processes find it by the tag; two racing first
steps keep the older run), and one nested run per step (`mlflow.parentRunId`), named after the step.

Records (every one has `kind`, `step` and `time`, milliseconds since the epoch):
- `start` {stage}: the step's nested run starts (at `time`).
- `end` {status}: it ends, FINISHED or FAILED.
- `dataset` {manifest, directory, source}: sluice/prepare's dataset.
- `training` {params, history, metrics, model_dir, sample, register}: sluice/train-keras's.
- `evaluation` {metrics, probes}: sluice/evaluate's.
- `codeset` {name, commit}: sluice/clone's checkout, a tag of the parent run.
- `cached` {results}: a step the local cache answered (written by the executor, not the step).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.digests import file_sha256

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
RUN_TAG = "sluice.run"
WORKFLOW_TAG = "sluice.workflow"
STEP_TAG = "sluice.step"
ROLE_TAG = "sluice.role"
COMMITS_TAG = "sluice.codeset-commits"
DATASET_TAG = "sluice.dataset.sha256"
CACHED_TAG = "sluice.cached"
MODEL_ARTIFACT = "sluice-model"  # the Sluice model directory, as a run artifact (what deploy serves)
LOG_BATCH_METRICS = 900  # MLflow's log_batch takes at most 1000 metrics


def quiet() -> None:
    """MLflow without progress bars, telemetry, chatty loggers or minutes of HTTP retries."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a step talks to its tracking server only
    # an unreachable server costs seconds, not MLflow's default minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def client() -> Any:
    quiet()
    uri = os.environ[TRACKING_URI_ENV]
    if uri.startswith("sqlite:///"):  # the local store: its folder may not exist yet
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)


def ui_command(uri: str) -> str:
    """How to look at a store: `mlflow ui` on a local one, the server's URL otherwise."""
    if uri.startswith("sqlite:///"):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        return f"mlflow ui --backend-store-uri {uri} --default-artifact-root {artifacts}"
    return f"open {uri}"


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run_tags() -> dict[str, str]:
    tags = {WORKFLOW_TAG: os.environ.get("SLUICE_WORKFLOW", ""), RUN_TAG: os.environ.get("SLUICE_RUN", "")}
    commits = os.environ.get("SLUICE_CODESET_REVISIONS")
    if commits:
        tags[COMMITS_TAG] = commits
    return tags


def model_index(home: str | None, model_dir: Path) -> Path | None:
    """Where the registration of the model in `model_dir` is kept in the Sluice home, by its
    model.keras digest, so a cached copy of the same model finds it (`sluice/promote`)."""
    keras_file = model_dir / "model.keras"
    if not home or not keras_file.is_file():
        return None
    return Path(home) / "mlflow" / "models" / f"{file_sha256(keras_file)}.json"


class Recorder:
    """The MLflow side of one Sluice run's records (one per process that applies them)."""

    def __init__(self) -> None:
        self.client = client()
        self.uri = os.environ[TRACKING_URI_ENV]
        self._experiment: str | None = None
        self._parent: str | None = None
        self.steps: dict[str, str] = {}  # step name -> its nested run
        self.commits: dict[str, str] = {}
        self.appliers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "start": self._start,
            "end": self._end,
            "dataset": self._dataset,
            "training": self._training,
            "evaluation": self._evaluation,
            "codeset": self._codeset,
            "cached": self._cached,
        }

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Log one record; returns the registration a `training` record made (else None)."""
        applier = self.appliers.get(str(record.get("kind")))
        if applier is None:
            raise ValueError(f"unknown tracking record kind {record.get('kind')!r}")
        return applier(record)

    # ---- the parent run and the steps' nested runs ----

    @property
    def reached(self) -> bool:
        """Whether the store ever answered (the experiment is known)."""
        return self._experiment is not None

    def experiment(self) -> str:
        if self._experiment is None:
            name = os.environ.get("SLUICE_WORKFLOW") or "sluice"
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                self._experiment = str(found.experiment_id)
            else:
                location = None
                if self.uri.startswith("sqlite:///"):  # no server: artifacts beside the database
                    location = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
                try:
                    self._experiment = str(self.client.create_experiment(name, artifact_location=location))
                except Exception:  # another process created it first
                    found = self.client.get_experiment_by_name(name)
                    if found is None:
                        raise
                    self._experiment = str(found.experiment_id)
        return self._experiment

    def parent(self) -> str:
        """The parent run of this Sluice run: found by tag, created by the first to ask."""
        if self._parent is not None:
            return self._parent
        experiment = self.experiment()
        run = os.environ.get("SLUICE_RUN", "")
        existing = self._oldest(experiment)
        if existing is None:
            created = self.client.create_run(
                experiment, tags={**run_tags(), ROLE_TAG: "run"}, run_name=run or "sluice-run"
            ).info.run_id
            existing = self._oldest(experiment) or created
            if existing != created:  # two first steps raced: keep the older run
                self.client.delete_run(created)
            self._remember(run, existing, experiment)
        self._parent = existing
        return existing

    def _oldest(self, experiment: str) -> str | None:
        """The oldest parent run of this Sluice run (the one two racing first steps keep)."""
        query = f"tags.`{RUN_TAG}` = '{os.environ.get('SLUICE_RUN', '')}' and tags.`{ROLE_TAG}` = 'run'"
        found = self.client.search_runs(
            [experiment], query, order_by=["attributes.start_time ASC"], max_results=1
        )
        return str(found[0].info.run_id) if found else None

    def existing_parent(self) -> str | None:
        """The parent run a step of this Sluice run created, or None (creates nothing)."""
        if self._parent is None:
            found = self.client.get_experiment_by_name(os.environ.get("SLUICE_WORKFLOW") or "sluice")
            self._parent = None if found is None else self._oldest(str(found.experiment_id))
        return self._parent

    def _remember(self, run: str, run_id: str, experiment: str) -> None:
        """`$SLUICE_HOME/mlflow/runs/<run>.json`, which `sluice runs RUN` reads (no mlflow import)."""
        home = os.environ.get("SLUICE_HOME")
        if not home or not run:
            return
        folder = Path(home) / "mlflow" / "runs"
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            ui = ui_command(self.uri)
            if self.uri.startswith(("http://", "https://")):
                ui = f"open {self.uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
            record = {"run_id": run_id, "experiment_id": experiment, "tracking_uri": self.uri, "ui": ui}
            (folder / f"{run}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def step_run(self, step: str, start: int | None = None, tags: dict[str, str] | None = None) -> str:
        if step not in self.steps:
            parent = self.parent()
            all_tags = {**run_tags(), ROLE_TAG: "step", STEP_TAG: step, "mlflow.parentRunId": parent}
            created = self.client.create_run(
                self.experiment(), start_time=start, tags={**all_tags, **(tags or {})}, run_name=step
            )
            self.steps[step] = created.info.run_id
        return self.steps[step]

    def _tag_both(self, step: str, key: str, value: str) -> None:
        for run_id in (self.step_run(step), self.parent()):
            self.client.set_tag(run_id, key, value)

    def _start(self, record: dict[str, Any]) -> None:
        self.step_run(record["step"], int(record["time"]))

    def _end(self, record: dict[str, Any]) -> None:
        status = "FINISHED" if record.get("status") == "FINISHED" else "FAILED"
        self.client.set_terminated(self.step_run(record["step"]), status, end_time=int(record["time"]))

    # ---- what each stage logs ----

    def _dataset(self, record: dict[str, Any]) -> None:
        """prepare: the dataset as an MLflow dataset input (digest = its sha256), rows and statistics."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

        manifest, directory, source = record["manifest"], str(record["directory"]), str(record["source"])
        run_id = self.step_run(record["step"])
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
            source_type="local" if not directory.startswith(("s3://", "pvc://")) else "uri",
            source=json.dumps({"uri": directory, "generator": source}),
            schema=json.dumps(schema),
            profile=json.dumps(profile, default=str),
        )
        training = [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])]
        self.client.log_inputs(run_id, training)
        self.client.log_inputs(self.parent(), training)
        at = int(record["time"])
        metrics = [Metric(f"rows_{key}", float(value), at, 0) for key, value in rows.items()]
        self.client.log_batch(run_id, metrics=metrics, params=[Param("source", source)])
        self._tag_both(record["step"], DATASET_TAG, digest)
        self.client.log_dict(run_id, manifest, "dataset-manifest.json")

    def _training(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """train-keras: parameters, per-epoch metrics, final metrics, the loss plot, the Keras model
        (signature and input example) and the Sluice model directory; registers a version under
        `register`. Returns the registration (name, version, run, model URI) or None."""
        from mlflow.entities import Metric, Param

        run_id, parent = self.step_run(record["step"]), self.parent()
        model_dir = Path(record["model_dir"])
        params = [Param(k, _param_text(v)) for k, v in record["params"].items()]
        history: dict[str, list[float]] = record["history"]
        at = int(record["time"])
        series = [
            Metric(key, float(value), at, epoch)
            for key, values in history.items()
            for epoch, value in enumerate(values, start=1)
        ]
        # the final (evaluated, best-weights) values: at the last epoch, logged later, so they are
        # what MLflow shows as each metric's latest value
        last = max((len(values) for values in history.values()), default=0)
        final = [
            Metric(k, float(v), at + 1, last)
            for k, v in record["metrics"].items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        self.client.log_batch(run_id, params=params)
        for start in range(0, len(series), LOG_BATCH_METRICS):
            self.client.log_batch(run_id, metrics=series[start : start + LOG_BATCH_METRICS])
        self.client.log_batch(run_id, metrics=final)
        # the parent run carries the parameters and final metrics too: runs are compared there
        self.client.log_batch(parent, metrics=final, params=params)
        for name in ("loss.png", "metrics.json", "history.json"):
            if (model_dir / name).is_file():
                self.client.log_artifact(run_id, str(model_dir / name))
        self.client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT)
        info = self._log_keras_model(run_id, model_dir, record["sample"])
        register = record.get("register")
        if not register:
            return None
        tags = {k: v for k, v in run_tags().items() if k in (WORKFLOW_TAG, RUN_TAG)}
        with contextlib.suppress(Exception):  # it exists
            self.client.create_registered_model(register, tags={WORKFLOW_TAG: tags[WORKFLOW_TAG]})
        version = self.client.create_model_version(
            register,
            info.model_uri,
            run_id=run_id,
            tags={**tags, "sluice.model-artifact": MODEL_ARTIFACT},
            model_id=info.model_id,
        )
        registration = {
            "tracking_uri": self.uri,
            "name": register,
            "version": str(version.version),
            "run_id": run_id,
            "model_uri": f"models:/{register}/{version.version}",
        }
        self.client.set_tag(parent, "sluice.model", registration["model_uri"])
        index = model_index(os.environ.get("SLUICE_HOME"), model_dir)
        if index is not None:
            with contextlib.suppress(OSError):
                index.parent.mkdir(parents=True, exist_ok=True)
                index.write_text(json.dumps(registration, indent=2) + "\n", encoding="utf-8")
        return registration

    def _log_keras_model(self, run_id: str, model_dir: Path, sample: list[list[float]]) -> Any:
        """The model in MLflow's TensorFlow flavour, with a signature and an input example."""
        import keras
        import mlflow
        import mlflow.tensorflow
        import numpy as np
        from mlflow.models import infer_signature

        # the model without its compile state: the training loss is a closure over the dataset's
        # statistics, which a loader could not deserialise
        model = keras.models.load_model(model_dir / "model.keras", compile=False)
        inputs = np.asarray(sample, dtype="float32")
        signature = infer_signature(inputs, model.predict(inputs, verbose=0))
        mlflow.set_tracking_uri(self.uri)  # the flavour logs through the fluent API, in this run
        # (mlflow.tensorflow: mlflow.keras 3.17 fails to save an input example; the requirements are
        # given, not inferred, which would load the model again in a subprocess)
        from importlib.metadata import version as installed

        requirements = [f"tensorflow-cpu=={installed('tensorflow-cpu')}", f"keras=={installed('keras')}"]
        with mlflow.start_run(run_id=run_id):
            return mlflow.tensorflow.log_model(
                model, name="model", signature=signature, input_example=inputs, pip_requirements=requirements
            )

    def _evaluation(self, record: dict[str, Any]) -> None:
        """evaluate: the metrics (also on the parent run, where runs are compared) and probe results."""
        from mlflow.entities import Metric

        run_id, at = self.step_run(record["step"]), int(record["time"])
        values = [Metric(k, float(v), at, 0) for k, v in record["metrics"].items()]
        self.client.log_batch(run_id, metrics=values)
        self.client.log_batch(self.parent(), metrics=values)
        if record.get("probes"):
            self.client.log_dict(run_id, record["probes"], "probes.json")

    def _codeset(self, record: dict[str, Any]) -> None:
        """A checked-out codeset: `sluice.codeset-commits` on the parent, `name=commit,...`."""
        self.commits[str(record["name"])] = str(record["commit"])
        text = ",".join(f"{name}={commit}" for name, commit in sorted(self.commits.items()))
        self.client.set_tag(self.parent(), COMMITS_TAG, text)

    def _cached(self, record: dict[str, Any]) -> None:
        """A step the cache answered: a nested run tagged `sluice.cached = true`, ended at once,
        with the step's results (numbers as metrics, the rest as parameters)."""
        from mlflow.entities import Metric, Param

        at = int(record["time"])
        run_id = self.step_run(record["step"], at, {CACHED_TAG: "true"})
        metrics, params = [], []
        for key, text in (record.get("results") or {}).items():
            try:
                metrics.append(Metric(key, float(text), at, 0))
            except (TypeError, ValueError):
                params.append(Param(key, str(text)[:6000]))
        self.client.log_batch(run_id, metrics=metrics, params=params)
        self.client.set_terminated(run_id, "FINISHED", end_time=at)
