"""Issue 18 (local): `sluice logs [-f]`, `sluice run --detach` and `sluice cancel`, from another shell,
on real runs of small PipelineRuns (the cancellable fixture's step starts a long-lived child)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.local.helpers import FIXTURES, alive
from tests.local.test_cli import REPO, sluice
from tests.local.test_run_management import record_of, run_fixture, wait_for

CANCELLABLE = str(FIXTURES / "cancellable.yaml")


@pytest.fixture
def child_pid(home: Path) -> Iterator[Path]:
    """The pid file the cancellable fixture's step writes; whatever it names is gone afterwards."""
    path = home / "child.pid"
    yield path
    if path.is_file() and path.read_text().strip():
        pid = int(path.read_text())
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_logs_of_a_step_and_of_all_steps(home: Path) -> None:
    failed = run_fixture(home, "failing.yaml")
    one = sluice(home, "logs", "latest", "broken")
    assert one.returncode == 0
    assert one.stdout.splitlines() == [
        "--- step oops",
        "loading data",
        "ValueError: the dataset is empty",
        "--- step oops failed with exit code 2",
    ]
    every = sluice(home, "logs", failed)
    assert every.returncode == 0
    assert every.stdout.splitlines()[:2] == ["[fine] --- step ok", "[broken] --- step oops"]
    assert "[broken] ValueError: the dataset is empty" in every.stdout
    unknown = sluice(home, "logs", failed, "brokn")
    assert unknown.returncode == 1
    assert unknown.stderr == f"sluice logs: run {failed} has no step 'brokn' (steps: fine, broken)\n"
    assert sluice(home, "logs").returncode == 2


def test_logs_of_all_steps_say_why_a_step_has_none(home: Path) -> None:
    """docs/local-runs.md: a step that has no log says why on stderr, when all steps are asked for
    too; a run answered wholly by the cache would otherwise print nothing at all."""
    run_fixture(home, "gated.yaml")
    cached = run_fixture(home, "gated.yaml")
    every = sluice(home, "logs", cached)
    assert every.returncode == 0 and every.stdout == ""
    cache = "restored from the cache (its log is in the run that computed it)"
    skipped = "skipped (WhenExpressionsFalse)"
    assert every.stderr.splitlines() == [
        f"sluice logs: step {step} has no log: {why}"
        for step, why in [
            ("evaluate", cache),
            ("deploy-gate", cache),
            ("deploy", skipped),
            ("tag", skipped),
            ("summary", cache),
        ]
    ]


def test_logs_are_redacted_on_disk_and_when_read(home: Path, tmp_path: Path) -> None:
    """The executor writes logs redacted; `sluice logs` redacts again with the secrets known now."""
    (home / "secrets.yaml").write_text("creds: {token: s3cr3t-token-value}\n")
    flow = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "talker"},
        "spec": {
            "pipelineSpec": {
                "tasks": [
                    {
                        "name": "talk",
                        "taskSpec": {
                            "steps": [
                                {
                                    "name": "say",
                                    "image": "busybox",
                                    "env": [
                                        {
                                            "name": "TOKEN",
                                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
                                        }
                                    ],
                                    "script": 'echo "token=$TOKEN"\necho "password=later-a-secret-42"',
                                }
                            ]
                        },
                    }
                ]
            }
        },
    }
    path = tmp_path / "talker.yaml"
    path.write_text(yaml.safe_dump(flow))
    done = sluice(home, "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["run"]
    on_disk = (home / "runs" / run / "logs/talk.log").read_text()
    assert "s3cr3t-token-value" not in on_disk and "token=***" in on_disk
    assert sluice(home, "logs", run, "talk").stdout.splitlines()[1:] == [
        "token=***",
        "password=later-a-secret-42",
    ]
    (home / "secrets.yaml").write_text(
        "creds: {token: s3cr3t-token-value}\ndb: {password: later-a-secret-42}\n"
    )
    assert sluice(home, "logs", run, "talk").stdout.splitlines()[1:] == ["token=***", "password=***"]


def test_detach_follow_cancel_runs_finally(home: Path, child_pid: Path) -> None:
    started = time.monotonic()
    done = sluice(home, "run", CANCELLABLE, "--detach")
    assert done.returncode == 0, done.stderr
    run = done.stdout.strip()
    assert run.startswith("cancellable-") and "\n" not in run
    assert time.monotonic() - started < 15, "returns at once, not after the run"
    # followed from the start, maybe before the background process has written the run's steps
    followers = [
        subprocess.Popen(
            [sys.executable, "-m", "controller.cli.main", "logs", run, *step, "-f"],
            cwd=REPO,
            env={**os.environ, "SLUICE_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for step in ([], ["sleepy"])
    ]
    wait_for(lambda: child_pid.is_file() and child_pid.read_text().strip() != "")
    child = int(child_pid.read_text())
    assert record_of(home, run)["phase"] == "Running"
    refused = sluice(home, "runs", "delete", run)
    assert refused.returncode == 1 and f"run {run} is running: `sluice cancel {run}` first" in refused.stderr

    cancelled = sluice(home, "cancel", run)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"run {run} cancelled: cancelled; finally tasks ran\n"
    out, err = followers[0].communicate(timeout=30)
    assert followers[0].returncode == 0, err
    assert "[sleepy] started sleeping" in out and "[cleanup] cleaning up" in out, "followed until the end"
    out, err = followers[1].communicate(timeout=30)
    assert followers[1].returncode == 0, err
    assert out.splitlines()[:2] == ["--- step sleep", "started sleeping"] and "cleaning" not in out
    wait_for(lambda: not alive(child), 10)
    assert (home / "cleaned").is_file(), "the finally task ran"
    record = record_of(home, run)
    assert record["phase"] == "Cancelled"
    assert {s["name"]: s["phase"] for s in record["steps"]} == {
        "sleepy": "Cancelled",
        "after": "Skipped",
        "cleanup": "Succeeded",
    }
    console = (home / "runs" / run / "console.log").read_text()
    assert "▶ sleepy started" in console and f"run {run} cancelled" in console
    again = sluice(home, "cancel", run)
    assert again.returncode == 1 and again.stderr == f"sluice cancel: run {run} already Cancelled\n"


def test_cancel_no_finally_stops_a_foregroundrun_fixture(home: Path, child_pid: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.main", "run", CANCELLABLE],
        cwd=REPO,
        env={**os.environ, "SLUICE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: child_pid.is_file() and child_pid.read_text().strip() != "")
    done = sluice(home, "cancel", "cancellable", "--no-finally")
    assert done.returncode == 0, done.stderr
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "cancelled" in err
    assert not (home / "cleaned").exists(), "--no-finally: the finally task did not run"
    assert not alive(int(child_pid.read_text()))
    record = record_of(home, "latest")
    assert record["phase"] == "Cancelled" and record["message"] == "cancelled"
    assert {s["name"]: s["phase"] for s in record["steps"]}["cleanup"] != "Succeeded"


def test_a_run_whose_process_died_reads_failed(home: Path, child_pid: Path) -> None:
    run = sluice(home, "run", CANCELLABLE, "--detach").stdout.strip()
    wait_for(lambda: child_pid.is_file() and child_pid.read_text().strip() != "")
    pid = json.loads((home / "runs" / run / "run.pid").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # a crash: no handler runs, run.json still says Running
    wait_for(lambda: not alive(pid), 10)
    record = record_of(home, run)
    assert record["phase"] == "Failed"
    assert record["message"].startswith("the sluice process running it ended before the run did")
    done = sluice(home, "cancel", run)
    assert done.returncode == 1 and done.stderr == f"sluice cancel: run {run} already Failed\n"
    assert sluice(home, "runs", "delete", run).returncode == 0


def test_follow_waits_for_the_steps_of_a_run_still_setting_up(home: Path) -> None:
    """A detached run's record has no steps until its process sets up: `logs -f RUN STEP` waits for
    them instead of refusing STEP, then prints the step's log and returns when the run ends."""
    from controller.executors.local.store import RunRecord, TaskRecord

    folder = home / "runs" / "slow-261129-000000-abcd"
    record = RunRecord("slow-261129-000000-abcd", "slow", "default", folder, start=time.time())
    record.save()  # Pending, no steps: what `sluice run --detach` writes before it forks
    follower = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.main", "logs", "slow", "work", "-f"],
        cwd=REPO,
        env={**os.environ, "SLUICE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert follower.poll() is None, "still waiting"
    record.tasks["work"] = TaskRecord("work", "tasks", phase="Running", log="logs/work.log")
    record.phase = "Running"
    record.save()
    (folder / "logs").mkdir()
    (folder / "logs/work.log").write_text("--- step main\nhalf a li")
    time.sleep(1.0)
    with (folder / "logs/work.log").open("a") as log:
        log.write("ne\ndone\n")
    record.phase = record.tasks["work"].phase = "Succeeded"
    record.save()
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out == "--- step main\nhalf a line\ndone\n", "a line is printed whole, once"
    refused = sluice(home, "logs", "slow", "other", "-f")
    assert refused.returncode == 1 and "has no step 'other' (steps: work)" in refused.stderr


def test_detach_checks_in_the_foreground(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {name: bad}\nspec: {steps: 3}\n"
    )
    done = sluice(home, "run", str(bad), "--detach")
    assert done.returncode == 1 and done.stderr.startswith(f"{bad}:") and done.stdout == ""
    assert not (home / "runs").exists() or not any((home / "runs").iterdir()), "nothing started"
    two = tmp_path / "two.yaml"
    diamond = (FIXTURES / "diamond.yaml").read_text()
    two.write_text(diamond + "\n---\n" + diamond.replace("name: diamond", "name: diamond-two", 1))
    done = sluice(home, "run", str(two), "--detach")
    assert done.returncode == 1
    assert done.stderr == f"sluice run --detach: {two} holds 2 runs; choose one with --run NAME\n"
