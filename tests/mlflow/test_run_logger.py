"""Issue 19, what a local run's MLflow logger adds (controller/executors/local/tracking.py,
stages/tracking_logger.py): steps spool records and one process logs them; the codeset commits
tag the MLflow run; a cached step still shows up; a failing tracking server is a warning in the
run summary, not a failed run; a step outside a local run logs by itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.runner import execute, prepare_run
from controller.executors.local.store import list_runs
from tests.local.test_codesets import _repo
from tests.mlflow.conftest import Server, needs_mlflow

WORKFLOW = Path(__file__).parent / "workflows" / "prepare-codeset.yaml"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [needs_mlflow]


def _run(home: Path, codeset: str, cache: bool) -> dict[str, Any]:
    prepared = prepare_run(WORKFLOW, [], [f"src={codeset}"], None)
    assert execute(prepared, use_cache=cache, json_out=True, parallel=None, home=home) == 0
    name = prepared.pipelinerun["metadata"]["name"]
    return next(r for r in list_runs(home) if r["run"] == name)


def _mlflow_runs(server: Server, experiment: str, run: str) -> dict[str, dict[str, Any]]:
    """The MLflow runs of one Sluice run by step name ('' for the parent), tags as a dict."""
    found = server.get("experiments/get-by-name", experiment_name=experiment)["experiment"]
    query = {"experiment_ids": [found["experiment_id"]], "filter": f"tags.`sluice.run` = '{run}'"}
    runs = {}
    for item in server.post("runs/search", query)["runs"]:
        tags = {t["key"]: t["value"] for t in item["data"].get("tags", [])}
        runs[tags.get("sluice.step", "")] = {**item, "tags": tags}
    return runs


@pytest.mark.timeout(600)
def test_the_run_logger_tags_commits_and_shows_cached_steps(
    mlflow_server: Server, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = _repo(tmp_path / "repo", "hello")
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    first = _run(home, f"file://{tmp_path / 'repo'}", cache=True)
    assert first["warnings"] == []
    runs = _mlflow_runs(mlflow_server, "prepare-codeset", first["run"])
    parent = runs[""]
    assert parent["tags"]["sluice.codeset-commits"] == f"src={head}"
    assert parent["info"]["status"] == "FINISHED", "the parent run ends with the Sluice run"
    prepare = runs["prepare"]
    assert prepare["info"]["status"] == "FINISHED" and "sluice.cached" not in prepare["tags"]
    digest = parent["tags"]["sluice.dataset.sha256"]
    assert prepare["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == digest[:36]
    # the step spooled its records; the run's logger logged them
    done = Path(first["folder"]) / "mlflow-spool" / "done"
    kinds = {json.loads(p.read_text())["kind"] for p in done.glob("*.json")}
    assert {"start", "dataset", "end", "codeset"} <= kinds

    again = _run(home, f"file://{tmp_path / 'repo'}", cache=True)
    assert all(s["cached"] for s in again["steps"] if s["name"] in ("prepare", "read", "clone-src"))
    cached = _mlflow_runs(mlflow_server, "prepare-codeset", again["run"])
    assert cached[""]["tags"]["sluice.codeset-commits"] == f"src={head}", "a cached checkout still tags"
    step = cached["prepare"]
    assert step["tags"]["sluice.cached"] == "true" and step["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in step["data"]["metrics"]}
    params = {p["key"]: p["value"] for p in step["data"]["params"]}
    assert metrics["rows"] == 300
    assert params["dataset"].endswith("/prepare/dataset")
    assert "read" not in cached, "a script step logs nothing, cached or not"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable_tracking(home: Path) -> dict[str, str]:
    """The environment of a `sluice run` in `home` whose MLflow tracking server does not answer."""
    return {
        **os.environ,
        "SLUICE_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_closed_port()}",
    }


def codeset_run_unreachable_tracking(home: Path, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """`sluice run` of WORKFLOW with its codeset a folder holding message.txt, and its environment
    (`unreachable_tracking`)."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "message.txt").write_text("hi")
    argv = [sys.executable, "-m", "controller.cli.main", "run", str(WORKFLOW), "--codeset", f"src={folder}"]
    return argv, unreachable_tracking(home)


@pytest.mark.timeout(300)
def test_a_failing_tracking_server_is_a_warning_in_the_run_summary(home: Path, tmp_path: Path) -> None:
    argv, env = codeset_run_unreachable_tracking(home, tmp_path)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Succeeded" in done.stdout
    assert "mlflow: warning: tracking is off for the rest of this run" in done.stdout, done.stdout
    record = json.loads(next((home / "runs").glob("*/run.json")).read_text())
    assert record["phase"] == "Succeeded"
    assert any("tracking is off" in w for w in record["warnings"])
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_a_step_outside_a_local_run_logs_by_itself(mlflow_server: Server, tmp_path: Path) -> None:
    """A cluster pod (or a step run by hand) has no spool: the step applies its records itself."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SLUICE_"))},
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SLUICE_WORKFLOW": "by-hand",
        "SLUICE_RUN": "by-hand-1",
    }
    argv = [sys.executable, "-m", "stages.prepare", "--generator", "sum-of-two", "--samples", "200"]
    argv += ["--artifacts-dir", str(tmp_path / "prepare")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mlflow: warning" not in done.stderr, done.stderr
    runs = _mlflow_runs(mlflow_server, "by-hand", "by-hand-1")
    assert runs[""]["tags"]["sluice.role"] == "run"
    assert runs["prepare"]["tags"]["mlflow.parentRunId"] == runs[""]["info"]["run_id"]
    assert runs["prepare"]["info"]["status"] == "FINISHED"
    assert runs["prepare"]["inputs"]["dataset_inputs"], "the dataset is an MLflow dataset input"


@pytest.mark.timeout(300)
def test_a_step_given_credentials_logs_by_itself(mlflow_server: Server, tmp_path: Path) -> None:
    """The run's logger never holds credentials: a step given them (a secret in its `env`) logs
    by itself instead of spooling; without them, it spools and leaves MLflow to the logger."""
    spool = tmp_path / "spool"
    spool.mkdir()
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SLUICE_", "AWS_"))},
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SLUICE_WORKFLOW": "credentials",
        "SLUICE_MLFLOW_SPOOL": str(spool),
    }
    for run, extra in (("spooled", {}), ("direct", {"MLFLOW_TRACKING_TOKEN": "t0ken"})):
        argv = [sys.executable, "-m", "stages.prepare", "--generator", "sum-of-two", "--samples", "100"]
        argv += ["--artifacts-dir", str(tmp_path / run / "prepare")]
        env = {**base, "SLUICE_RUN": run, **extra}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    spooled = [json.loads(p.read_text()) for p in spool.glob("*.json")]
    assert {r["kind"] for r in spooled} == {"start", "dataset", "end"}
    assert "t0ken" not in json.dumps(spooled)
    runs = _mlflow_runs(mlflow_server, "credentials", "direct")
    assert runs["prepare"]["inputs"]["dataset_inputs"], "the step with credentials logged by itself"
    experiment = mlflow_server.get("experiments/get-by-name", experiment_name="credentials")["experiment"]
    query = {"experiment_ids": [experiment["experiment_id"]], "filter": "tags.`sluice.run` = 'spooled'"}
    assert mlflow_server.post("runs/search", query).get("runs", []) == [], "spooled: left to a logger"


SCRIPT_ONLY = """
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {name: script-only}
spec:
  steps:
    - name: hello
      image: busybox
      script: |
        #!/bin/sh
        sleep %s
"""


@pytest.mark.timeout(300)
def test_a_run_without_logging_stages_starts_no_logger(home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "script-only.yaml"
    workflow.write_text(SCRIPT_ONLY % 0)
    env = unreachable_tracking(home)
    argv = [sys.executable, "-m", "controller.cli.main", "run", str(workflow)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    folder = next((home / "runs").iterdir())
    assert not (folder / "logs" / "mlflow.log").exists(), "no logger process, no mlflow import"
    assert "mlflow" not in done.stdout


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_the_logger_ends_when_its_run_is_killed(home: Path, tmp_path: Path) -> None:
    """`sluice run` killed outright never closes the spool: the logger notices and exits."""
    import signal
    import time

    argv, env = codeset_run_unreachable_tracking(home, tmp_path)
    run = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        pid_files: list[Path] = []
        while not pid_files and time.monotonic() < deadline:
            pid_files = list((home / "runs").glob("*/mlflow-spool/logger.pid"))
            time.sleep(0.1)
        assert pid_files, "the logger started with the prepare task"
        logger = int(pid_files[0].read_text())
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _running(logger) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = _running(logger)
        assert not alive, "the orphaned logger exited"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
