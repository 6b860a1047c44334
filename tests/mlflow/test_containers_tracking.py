"""`sluice run --containers` logs to MLflow as a run of host steps does: the step containers spool
their records to the run's logger on the host (the spool mounted at /tekton/mlflow-spool), which
maps the paths they name through the step's mounts (tests/mlflow/test_spool_mounts.py). Both runs
of one small workflow go to one real tracking server on 127.0.0.1, and what MLflow shows of them
is compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller import tracking_spool
from controller.executors.local.engines import Engine
from controller.executors.local.runner import execute, prepare_run
from controller.executors.local.store import list_runs
from tests.local.test_containers import engine, stages_image  # noqa: F401  (fixtures)
from tests.mlflow.conftest import Server, needs_mlflow
from tests.mlflow.test_tracking_end import _end_step, _parents, _run_compiled

WORKFLOW = Path(__file__).parent / "workflows" / "train-small.yaml"
pytestmark = [needs_mlflow, pytest.mark.slow]


def _run(home: Path, containers: str | None = None, image: str | None = None) -> dict[str, Any]:
    prepared = prepare_run(WORKFLOW, [], [], None, stages_image=image, containers=containers is not None)
    status = execute(
        prepared, use_cache=False, json_out=True, parallel=None, home=home, containers=containers
    )
    assert status == 0
    name = prepared.pipelinerun["metadata"]["name"]
    return next(r for r in list_runs(home) if r["run"] == name)


def _logged(server: Server, run: str) -> dict[str, Any]:
    """What MLflow shows of one Sluice run: its parent run and nested step runs (status, tags,
    parameters, metric names, artifacts, per-epoch history) and the model version it registered."""
    experiment = server.get("experiments/get-by-name", experiment_name="train-small")["experiment"]
    query = {"experiment_ids": [experiment["experiment_id"]], "filter": f"tags.`sluice.run` = '{run}'"}
    shown: dict[str, Any] = {}
    ids: dict[str, str] = {}
    for item in server.post("runs/search", query)["runs"]:
        tags = {t["key"]: t["value"] for t in item["data"].get("tags", [])}
        name = "run" if tags["sluice.role"] == "run" else tags["sluice.step"]
        assert name not in shown, f"{name} logged twice"
        run_id = item["info"]["run_id"]
        ids[name] = run_id
        listed = server.get("artifacts/list", run_id=run_id).get("files", [])
        shown[name] = {
            "status": item["info"]["status"],
            "tags": sorted(k for k in tags if k.startswith("sluice.") or k == "mlflow.parentRunId"),
            "params": {p["key"]: p["value"] for p in item["data"].get("params", [])},
            "metrics": sorted(m["key"] for m in item["data"].get("metrics", [])),
            "artifacts": sorted(f["path"] for f in listed),
            "datasets": [d["dataset"]["digest"] for d in item.get("inputs", {}).get("dataset_inputs", [])],
        }
        assert tags["sluice.workflow"] == "train-small"
        if name != "run":
            assert tags["mlflow.parentRunId"] != run_id
    history = server.get("metrics/get-history", run_id=ids["train"], metric_key="val_mae")["metrics"]
    shown["train"]["epochs"] = len(history)
    versions = server.get("model-versions/search", filter="name='train-small'")["model_versions"]
    (version,) = [v for v in versions if v["run_id"] == ids["train"]]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert tags["sluice.run"] == run and version["source"].startswith("models:/m-")
    shown["version-tags"] = sorted(tags)
    return shown


@pytest.fixture
def contained(
    mlflow_server: Server,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,  # noqa: F811
    stages_image: str,  # noqa: F811
) -> tuple[str, str]:
    """Runs log to `mlflow_server`; the engine's name and the stages image for --containers."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    return Path(engine.command).name, stages_image


@pytest.mark.timeout(1200)
def test_a_containers_run_logs_to_mlflow_as_a_host_run_does(
    mlflow_server: Server, home: Path, contained: tuple[str, str]
) -> None:
    on_host = _run(home)
    contained_run = _run(home, *contained)
    assert not contained_run.get("warnings"), contained_run.get("warnings")

    host_logged, container_logged = (
        _logged(mlflow_server, on_host["run"]),
        _logged(mlflow_server, contained_run["run"]),
    )
    assert set(container_logged) == {"run", "prepare", "train", "evaluate", "version-tags"}
    assert container_logged == host_logged
    assert container_logged["run"]["status"] == "FINISHED"
    assert {"val_mae", "mae"} <= set(container_logged["run"]["metrics"])
    assert {"loss.png", "sluice-model"} <= set(container_logged["train"]["artifacts"])
    assert container_logged["train"]["epochs"] == 3 + 1, "val_mae of each epoch, then the final value"
    assert container_logged["prepare"]["datasets"] == host_logged["prepare"]["datasets"] != []
    mounts = home / "runs" / contained_run["run"] / tracking_spool.MOUNTS_DIR
    assert {p.name for p in mounts.iterdir()} == {"prepare.json", "train.json", "evaluate.json"}


@pytest.mark.timeout(1200)
def test_in_containers_the_finally_task_leaves_the_parent_run_to_the_logger(
    mlflow_server: Server, home: Path, contained: tuple[str, str]
) -> None:
    """`sluice run --containers` of a PipelineRun compiled with tracking (as on a cluster): the
    steps and the `mlflow-end` finally task run in the stages image with the run's spool, so the
    logger logs and ends the parent run, once (tests/mlflow/test_tracking_end.py)."""
    engine_name, image = contained
    name = "small-in-containers"
    result = _run_compiled(
        mlflow_server, home, "train-small.yaml", name, image, f"--containers={engine_name}"
    )
    assert result["exit"] == 0 and not result.get("warnings"), result.get("warnings")
    assert _end_step(result)["results"] == {"status": ""}, "the finally task left it to the logger"
    (parent,) = _parents(mlflow_server, "train-small", result["run"])
    assert parent["status"] == "FINISHED"
