"""Issue 19 in the stages image: a built-in step in its container logs to an MLflow tracking
server, as a task pod does on a cluster (the image carries MLflow's client, mlflow-skinny).

The server runs on 127.0.0.1 and the container shares the host's network for this one check (a
cluster pod reaches its server by Service name instead). The engine and the image are the ones
`sluice run --containers` uses (tests/local/test_containers.py builds the image when missing)."""

from __future__ import annotations

import subprocess

import pytest

from controller.executors.local.engines import Engine
from tests.local.test_containers import engine, stages_image  # noqa: F401  (fixtures)
from tests.mlflow.conftest import Server, needs_mlflow

pytestmark = [needs_mlflow, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_a_step_in_the_stages_image_logs_to_the_tracking_server(
    mlflow_server: Server,
    engine: Engine,  # noqa: F811
    stages_image: str,  # noqa: F811
) -> None:
    argv = [engine.command, "run", "--rm", "--network", "host"]
    for name, value in {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SLUICE_WORKFLOW": "in-the-image",
        "SLUICE_RUN": "in-the-image-1",
    }.items():
        argv += ["--env", f"{name}={value}"]
    argv += [stages_image, "python", "-m", "stages.prepare", "--generator", "sum-of-two"]
    argv += ["--samples", "200", "--artifacts-dir", "/tmp/prepare"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=engine.env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mlflow: warning" not in done.stderr, done.stderr
    experiment = mlflow_server.get("experiments/get-by-name", experiment_name="in-the-image")["experiment"]
    query = {"experiment_ids": [experiment["experiment_id"]], "filter": "tags.`sluice.step` = 'prepare'"}
    (run,) = mlflow_server.post("runs/search", query)["runs"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["sluice.run"] == "in-the-image-1" and run["info"]["status"] == "FINISHED"
    assert run["inputs"]["dataset_inputs"], "the dataset is an MLflow dataset input"
