"""`sluice run`, `runs`, `report`, `endpoints` as a user calls them (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.local.helpers import FIXTURES, alive

REPO = Path(__file__).resolve().parents[2]


def sluice(
    home: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd or REPO,
        env={**os.environ, "SLUICE_HOME": str(home), **(env or {})},
    )


def test_run_prints_results_and_json(home: Path) -> None:
    done = sluice(home, "run", str(FIXTURES / "diamond.yaml"))
    assert done.returncode == 0, done.stderr
    assert "run diamond-" in done.stdout
    assert "joined = hello-left|hello-right-one+two+three|diamond-" in done.stdout
    assert "✓ left" in done.stdout

    done = sluice(home, "run", str(FIXTURES / "diamond.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"run", "phase", "steps", "outputs"}
    assert data["phase"] == "Succeeded"
    assert all(step["cached"] for step in data["steps"]), "the second run comes from the cache"
    assert data["outputs"]["joined"].endswith(f"{data['run']}-join")

    listed = sluice(home, "runs")
    assert listed.returncode == 0 and listed.stdout.count("diamond-") == 2
    shown = sluice(home, "runs", data["run"])
    assert shown.returncode == 0
    assert "sha256:" in shown.stdout and "out " in shown.stdout
    report = sluice(home, "report", data["run"])
    assert report.returncode == 0
    page = Path(report.stdout.strip()).read_text()
    assert page.startswith("<!doctype html>") and "left" in page and "http" not in page.split("<body>")[0]


def test_failed_run_exits_1_naming_the_task_with_its_log(home: Path) -> None:
    done = sluice(home, "run", str(FIXTURES / "failing.yaml"))
    assert done.returncode == 1
    assert "task broken failed" in done.stderr
    assert "ValueError: the dataset is empty" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_input_is_one_line_exit_1(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: x}\nspec:\n  pipelineRef: {name: p}\n"
    )
    done = sluice(home, "run", str(bad))
    assert done.returncode == 1
    assert "pipelineRef" in done.stderr and "Traceback" not in done.stderr
    assert sluice(home, "runs", "no-such-run").returncode == 1
    assert sluice(home, "run").returncode == 2


def test_an_unknown_container_engine_is_a_usage_error(home: Path) -> None:
    """Exit 2 as for any bad option value, before anything is read or run."""
    done = sluice(home, "run", str(FIXTURES / "diamond.yaml"), "--containers=dockr")
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr == "sluice run: --containers takes podman or docker (--containers=podman), not 'dockr'\n"
    )
    assert not (home / "runs").exists()


def test_ctrl_c_cancels_and_leaves_no_child(home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.main", "run", str(FIXTURES / "sleeper.yaml")],
        cwd=REPO,
        env={**os.environ, "SLUICE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = home / "child.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert alive(child)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "cancelled" in err
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    record = json.loads(next((home / "runs").glob("sleeper-*/run.json")).read_text())
    assert record["phase"] == "Cancelled"
    phases = {s["name"]: s["phase"] for s in record["steps"]}
    assert phases == {"sleepy": "Cancelled", "after": "Skipped"}


def test_endpoints_empty_and_stop_unknown(home: Path) -> None:
    listed = sluice(home, "endpoints", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    stopped = sluice(home, "endpoints", "stop", "nothing-here")
    assert stopped.returncode == 1 and "nothing-here" in stopped.stderr
