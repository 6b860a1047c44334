"""On a cluster the parent MLflow run ends with the PipelineRun: the compiled `finally` task
(`stages.tracking_end`, added when tracking is configured) ends it FINISHED or FAILED after
`$(tasks.status)`. Driven through the compiled PipelineRun against a real tracking server on
127.0.0.1: with `SLUICE_MLFLOW=off` the local executor has no logger, so every step logs by itself
as a task pod does and only the finally task can end the run; without it the run's logger owns
the parent run and the finally task leaves it alone, so it is ended once (in containers too:
tests/mlflow/test_containers_tracking.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.compiler import compile_run, to_yaml
from controller.serving.tracking import MlflowTracking
from controller.spec import load_workflow
from tests.mlflow.conftest import Server, needs_mlflow
from testsupport.processes import run_captured

WORKFLOWS = Path(__file__).parent / "workflows"
pytestmark = [needs_mlflow, pytest.mark.slow]


def _run_compiled(
    server: Server, home: Path, workflow: str, name: str, image: str | None = None, *options: str, **env: str
) -> dict[str, Any]:
    """`sluice run --json` of the PipelineRun `workflow` compiles to with tracking on `server`."""
    compiled = compile_run(
        load_workflow(str(WORKFLOWS / workflow)),
        run_name=name,
        mlflow=MlflowTracking(server.url),
        stages_image=image,
    )
    path = home / f"{name}.yaml"
    path.write_text(to_yaml(compiled), encoding="utf-8")
    environ = {**os.environ, "SLUICE_HOME": str(home), **env}
    argv = [sys.executable, "-m", "controller.cli.main", "run", str(path), "--json", *options]
    done = run_captured(argv, env=environ, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    return {"exit": done.returncode, **json.loads(done.stdout)}


def _parents(server: Server, workflow: str, run: str) -> list[dict[str, Any]]:
    experiment = server.get("experiments/get-by-name", experiment_name=workflow)["experiment"]
    query = f"tags.`sluice.run` = '{run}' and tags.`sluice.role` = 'run'"
    found = server.post("runs/search", {"experiment_ids": [experiment["experiment_id"]], "filter": query})
    return [r["info"] for r in found.get("runs", [])]


def _end_step(result: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["name"] == "mlflow-end")


@pytest.mark.timeout(900)
def test_the_finally_task_ends_the_parent_run_finished(mlflow_server: Server, home: Path) -> None:
    result = _run_compiled(mlflow_server, home, "train-small.yaml", "small-on-cluster", SLUICE_MLFLOW="off")
    assert result["exit"] == 0 and result["phase"] == "Succeeded"
    assert _end_step(result)["results"] == {"status": "FINISHED"}
    (parent,) = _parents(mlflow_server, "train-small", "small-on-cluster")
    assert parent["status"] == "FINISHED" and int(parent["end_time"]) >= int(parent["start_time"])


@pytest.mark.timeout(900)
def test_a_failed_run_ends_its_parent_run_failed_once(mlflow_server: Server, home: Path) -> None:
    result = _run_compiled(
        mlflow_server, home, "fails-after-prepare.yaml", "fails-on-cluster", SLUICE_MLFLOW="off"
    )
    assert result["exit"] == 1 and result["phase"] == "Failed"
    assert _end_step(result)["results"] == {"status": "FAILED"}
    (parent,) = _parents(mlflow_server, "fails-after-prepare", "fails-on-cluster")
    assert parent["status"] == "FAILED"

    # the task again (a retried pod): the run has ended, so it stays as it is
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SLUICE_WORKFLOW": "fails-after-prepare",
        "SLUICE_RUN": "fails-on-cluster",
    }
    argv = [sys.executable, "-m", "stages.tracking_end", "--status", "Succeeded"]
    again = run_captured(argv, env=env, timeout=120)
    assert again.returncode == 0 and "already ended (FAILED)" in again.stdout, again.stdout + again.stderr
    assert [p["status"] for p in _parents(mlflow_server, "fails-after-prepare", "fails-on-cluster")] == [
        "FAILED"
    ]
    assert [p["end_time"] for p in _parents(mlflow_server, "fails-after-prepare", "fails-on-cluster")] == [
        parent["end_time"]
    ]


@pytest.mark.timeout(900)
def test_in_a_local_run_the_logger_ends_the_parent_run(
    mlflow_server: Server, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    result = _run_compiled(mlflow_server, home, "fails-after-prepare.yaml", "fails-locally")
    assert result["exit"] == 1 and not result.get("warnings"), result.get("warnings")
    assert _end_step(result)["results"] == {"status": ""}, "the finally task left it to the logger"
    log = (Path(result["folder"]) / "logs").glob("mlflow-end*")
    assert any("the run's MLflow logger ends the MLflow run" in p.read_text() for p in log)
    # the logger tags the run with the local run's id (what `sluice runs` shows), as in any local run
    (parent,) = _parents(mlflow_server, "fails-after-prepare", result["run"])
    assert parent["status"] == "FAILED"
