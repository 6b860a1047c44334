"""Issue 19 end to end: `sluice run` logs to MLflow (a real tracking server on 127.0.0.1, then the
local default store in the Sluice home), registers the model, a gated step promotes it to
`champion`, and a second workflow serves `models:/sum-of-two@champion` for `sluice predict`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.runner import execute, prepare_run
from controller.executors.local.store import list_runs
from tests.mlflow.conftest import Server, needs_mlflow
from testsupport.processes import run_captured

ROOT = Path(__file__).resolve().parents[2]
SUM_OF_TWO = ROOT / "workflows" / "sum-of-two.yaml"
CHAMPION = Path(__file__).parent / "workflows" / "sum-of-two-champion.yaml"
SERVE = Path(__file__).parent / "workflows" / "serve-champion.yaml"

pytestmark = [needs_mlflow, pytest.mark.slow]


def _run(workflow: Path, home: Path, inputs: list[str] | None = None) -> dict[str, Any]:
    prepared = prepare_run(workflow, inputs or [], [], None)
    assert execute(prepared, use_cache=False, json_out=True, parallel=None, home=home) == 0
    name = prepared.pipelinerun["metadata"]["name"]
    return next(r for r in list_runs(home) if r["run"] == name)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_HOME": str(home)}
    return run_captured([sys.executable, "-m", "controller.cli.main", *args], env=env, timeout=120)


def _serve_champion_and_predict(home: Path, expected_version: str) -> None:
    from stages import endpoints

    try:
        served = _run(SERVE, home)
        assert served["outputs"]["prediction-url"].startswith("http://127.0.0.1:")
        endpoint = next(e for e in endpoints.list_endpoints() if e.name == "champion")
        assert endpoint.registered == f"models:/sum-of-two/{expected_version}"
        answer = _cli(home, "predict", "champion", "300", "400")
        assert answer.returncode == 0, answer.stderr
        assert abs(float(answer.stdout.strip().rsplit("->", 1)[-1]) - 700.0) < 100, answer.stdout
    finally:
        for endpoint in endpoints.list_endpoints():
            endpoints.stop_endpoint(endpoint.name)


@pytest.mark.timeout(900)
def test_runs_log_to_a_tracking_server_and_champion_is_served(
    mlflow_server: Server, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    record = _run(SUM_OF_TWO, home, ["samples=2000"])
    run = record["run"]

    experiment = mlflow_server.get("experiments/get-by-name", experiment_name="sum-of-two")["experiment"]
    found = mlflow_server.post(
        "runs/search",
        {"experiment_ids": [experiment["experiment_id"]], "filter": f"tags.`sluice.run` = '{run}'"},
    )["runs"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for item in found:
        tags = {t["key"]: t["value"] for t in item["data"].get("tags", [])}
        by_role.setdefault(tags["sluice.role"], []).append({**item, "tags": tags})
    assert len(by_role["run"]) == 1, "one MLflow run per Sluice run"
    parent = by_role["run"][0]
    steps = {s["tags"]["sluice.step"]: s for s in by_role["step"]}
    assert {"prepare", "train", "evaluate"} <= set(steps)
    assert all(s["tags"]["mlflow.parentRunId"] == parent["info"]["run_id"] for s in steps.values())
    assert parent["tags"]["sluice.workflow"] == "sum-of-two"
    dataset_sha = parent["tags"]["sluice.dataset.sha256"]
    assert len(dataset_sha) == 64

    params = {p["key"]: p["value"] for p in parent["data"]["params"]}
    assert params["epochs"] == "20" and params["optimizer"] == "adam"
    metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert {"val_mae", "mae"} <= set(metrics)
    train_results = next(s["results"] for s in record["steps"] if s["name"] == "train")
    assert abs(metrics["val_mae"] - float(train_results["val-mae"])) < 1e-3 * max(1.0, metrics["val_mae"])
    per_epoch = mlflow_server.get(
        "metrics/get-history", run_id=steps["train"]["info"]["run_id"], metric_key="val_mae"
    )
    assert len(per_epoch["metrics"]) >= 20
    inputs = steps["prepare"]["inputs"]["dataset_inputs"]
    assert inputs and inputs[0]["dataset"]["digest"] == dataset_sha[:36]

    artifacts = mlflow_server.get("artifacts/list", run_id=steps["train"]["info"]["run_id"])
    paths = {f["path"] for f in artifacts.get("files", [])}
    assert {"loss.png", "sluice-model"} <= paths

    versions = mlflow_server.get("model-versions/search", filter="name='sum-of-two'")["model_versions"]
    assert len(versions) == 1
    version = versions[0]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert tags["sluice.workflow"] == "sum-of-two" and tags["sluice.run"] == run
    assert version["run_id"] == steps["train"]["info"]["run_id"]
    logged = version["source"]  # the Keras model logged with the TensorFlow flavour
    assert logged.startswith("models:/m-")
    model = mlflow_server.get(f"logged-models/{logged.removeprefix('models:/')}")["model"]
    assert model["info"]["status"] == "LOGGED_MODEL_READY"

    shown = _cli(home, "runs", run)
    assert shown.returncode == 0, shown.stderr
    assert f"mlflow: run {parent['info']['run_id']}" in shown.stdout and mlflow_server.url in shown.stdout

    promoted = _run(CHAMPION, home)
    new_version = promoted["outputs"].get("version") or next(
        s["results"]["version"] for s in promoted["steps"] if s["name"] == "promote"
    )
    alias = mlflow_server.get("registered-models/alias", name="sum-of-two", alias="champion")
    assert alias["model_version"]["version"] == new_version == "2"
    _serve_champion_and_predict(home, "2")


@pytest.mark.timeout(900)
def test_the_local_default_store_without_a_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    promoted = _run(CHAMPION, home)
    version = next(s["results"]["version"] for s in promoted["steps"] if s["name"] == "promote")
    assert version == "1"
    database = home / "mlflow" / "mlflow.db"
    assert database.is_file()
    shown = _cli(home, "runs", promoted["run"])
    assert f"mlflow ui --backend-store-uri sqlite:///{database}" in shown.stdout, shown.stdout
    recorded = json.loads((home / "mlflow" / "runs" / f"{promoted['run']}.json").read_text())
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{database}")
    parent = client.get_run(recorded["run_id"])
    assert parent.data.tags["sluice.run"] == promoted["run"]
    assert "val_mae" in parent.data.metrics and "mae" in parent.data.metrics
    artifacts = Path(parent.info.artifact_uri.removeprefix("file://"))
    assert str(artifacts).startswith(str(home / "mlflow" / "artifacts")), "artifacts in the Sluice home"
    assert str(client.get_model_version_by_alias("sum-of-two", "champion").version) == "1"
    _serve_champion_and_predict(home, "1")
