"""The pid file behind `sluice cancel` and the stale-run check: a pid is the run's only while the
process with that pid is the one that wrote it (same kernel start time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from controller.executors.local import runprocess


def test_a_live_pid_file_names_its_process(tmp_path: Path) -> None:
    runprocess.write_pid(tmp_path, os.getpid())
    assert runprocess.running_pid(tmp_path) == os.getpid()
    data = json.loads((tmp_path / runprocess.PID_FILE).read_text())
    assert data["start"] == runprocess.process_start(os.getpid()) and data["start"]


def test_a_reused_pid_is_not_the_run(tmp_path: Path) -> None:
    """The pid now belongs to another process (started at another time): the run's process is gone."""
    (tmp_path / runprocess.PID_FILE).write_text(json.dumps({"pid": os.getpid(), "start": "1"}))
    assert runprocess.running_pid(tmp_path) is None


def test_an_ended_process_or_a_bad_file_is_no_run(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    runprocess.write_pid(tmp_path, int(ended.stdout))
    assert runprocess.running_pid(tmp_path) is None
    for text in ("", "{", '{"pid": "x"}', "[]"):
        (tmp_path / runprocess.PID_FILE).write_text(text)
        assert runprocess.running_pid(tmp_path) is None, text
    assert runprocess.running_pid(tmp_path / "missing") is None


def test_cancel_requests(tmp_path: Path) -> None:
    """The request (finally tasks or not) is written before the SIGTERM, so the run can read it."""
    assert runprocess.cancel_requested(tmp_path) is None
    for run_finally in (False, True):
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            runprocess.request_cancel(tmp_path, sleeper.pid, run_finally=run_finally)
            assert sleeper.wait(timeout=10) == -15, "SIGTERM sent"
        finally:
            if sleeper.poll() is None:
                sleeper.kill()
                sleeper.wait()
        assert runprocess.cancel_requested(tmp_path) is run_finally
