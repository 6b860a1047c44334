"""sum-of-two end to end: load, compile, run locally, a served model answering; then a cached rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from controller.executors.local.runner import execute, prepare_run
from controller.executors.local.store import list_runs

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "sum-of-two.yaml"


def _predict(url: str, rows: list[list[float]]) -> list[float]:
    body = {"inputs": [{"name": "inputs", "shape": [len(rows), 2], "datatype": "FP32", "data": rows}]}
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return [float(v) for v in answer["outputs"][0]["data"]]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sum_of_two_runs_serves_and_reruns_from_cache(home: Path) -> None:
    from stages import endpoints

    inputs: list[str] = []  # the workflow's own defaults: the README's main job
    first = prepare_run(WORKFLOW, inputs, [], None)
    try:
        assert execute(first, use_cache=True, json_out=True, parallel=None, home=home) == 0
        record = next(r for r in list_runs(home) if r["run"] == first.pipelinerun["metadata"]["name"])
        steps = {s["name"]: s for s in record["steps"]}
        assert steps["train"]["phase"] == "Succeeded" and len(steps["train"]["metrics"]["loss"]) == 20
        assert steps["deploy"]["phase"] == "Succeeded"
        url = record["outputs"]["prediction-url"]
        assert url.startswith("http://127.0.0.1:")
        predicted = _predict(url, [[100.0, 250.0], [3.0, 4.0]])
        assert abs(predicted[0] - 350.0) < 25 and abs(predicted[1] - 7.0) < 25
        # what the quickstart prints: the served model answering through `sluice predict`
        answer = subprocess.run(
            [sys.executable, "-m", "controller.cli.main", "predict", "sum-of-two", "300", "400"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SLUICE_HOME": str(home)},
        )
        assert answer.returncode == 0, answer.stderr
        shown = answer.stdout.strip().rsplit("->", 1)[-1]
        assert abs(float(shown) - 700.0) < 10, answer.stdout
        lineage = [a["sha256"] for a in steps["train"]["inputs"]]
        assert any(a["sha256"] in lineage for a in steps["prepare"]["artifacts"]), "dataset -> model lineage"

        started = time.monotonic()
        second = prepare_run(WORKFLOW, inputs, [], None)
        assert execute(second, use_cache=True, json_out=True, parallel=None, home=home) == 0
        rerun_seconds = time.monotonic() - started
        again = next(r for r in list_runs(home) if r["run"] == second.pipelinerun["metadata"]["name"])
        cached = {s["name"] for s in again["steps"] if s["cached"]}
        assert {"prepare", "train", "evaluate"} <= cached
        assert "deploy" not in cached
        assert rerun_seconds < 60, f"a cached rerun took {rerun_seconds:.1f}s"
    finally:
        for endpoint in endpoints.list_endpoints():
            endpoints.stop_endpoint(endpoint.name)
