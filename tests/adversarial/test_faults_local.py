"""Faults on one machine: `sluice run` SIGKILLed mid-task resumes from the cache; the clone stage
against a Git server that is down, or that trickles bytes forever (bounded by its timeout, its
helper processes killed with it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.conftest import REPO, Sandbox, run_sluice

WORKFLOW = """\
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {{name: resumable}}
spec:
  steps:
    - name: first
      image: busybox
      script: |
        echo first >> {counter}
        printf one > "$(results.value.path)"
      outputs: [{{name: value, type: string}}]
    - name: second
      image: busybox
      script: |
        echo second >> {counter}
        touch {started}
        if [ -f {hold} ]; then sleep 60; fi
        printf '%s-two' "{{{{ steps.first.outputs.value }}}}" > "$(results.value.path)"
      outputs: [{{name: value, type: string}}]
    - name: third
      image: busybox
      script: |
        echo third >> {counter}
        printf '%s-three' "{{{{ steps.second.outputs.value }}}}" > "$(results.value.path)"
      outputs: [{{name: value, type: string}}]
  outputs:
    - {{name: result, value: "{{{{ steps.third.outputs.value }}}}"}}
"""


def test_sigkilled_run_resumes_from_the_cache(sandbox: Sandbox) -> None:
    counter, started, hold = (sandbox.root / "inputs" / n for n in ("counter", "started", "hold"))
    hold.touch()
    workflow = sandbox.write("wf.yaml", WORKFLOW.format(counter=counter, started=started, hold=hold))
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.main", "run", str(workflow)],
        cwd=sandbox.work,
        env=sandbox.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the second task never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its task processes, mid-task, no clean-up
    process.wait(10)
    assert counter.read_text().split() == ["first", "second"]

    listed = run_sluice(sandbox, "runs", "--json")  # the killed run's record is still readable
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert len(json.loads(listed.stdout)) == 1

    hold.unlink()
    again = run_sluice(sandbox, "run", str(workflow), "--json", timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    data = json.loads(again.stdout)
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["first"]["cached"] is True, "the completed task comes from the cache"
    assert steps["second"]["cached"] is False and steps["third"]["cached"] is False
    assert data["outputs"]["result"] == "one-two-three"
    assert counter.read_text().split() == ["first", "second", "second", "third"]
    sandbox.assert_untouched()


# --- Git servers that are down or trickle -----------------------------------------------------------


class TrickleServer:
    """Accepts connections, sends HTTP headers, then one byte every half second, forever."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        with client:
            try:
                client.recv(65536)
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n\r\n"
                )
                while not self.stopped.wait(0.5):
                    client.sendall(b"0")
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer()
    yield server
    server.stop()


def clone(sandbox: Sandbox, url: str, timeout: str = "2") -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.clone",
            f"--url={url}",
            "--revision=main",
            f"--dest={sandbox.home / 'runs/r/src'}",
        ],
        cwd=sandbox.work,
        env=sandbox.env({"SLUICE_ALLOW_LOCAL_GIT": "1", "SLUICE_CLONE_TIMEOUT": timeout}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def helpers_talking_to(port: int) -> list[int]:
    """git processes still connected to the port (from their command lines)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\x00", b" ")
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if f"127.0.0.1:{port}".encode() in cmdline and b"git" in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def test_clone_from_a_trickling_server_times_out_and_leaves_nothing_running(
    sandbox: Sandbox, trickle: TrickleServer
) -> None:
    done, seconds = clone(sandbox, f"http://127.0.0.1:{trickle.port}/r.git")
    assert done.returncode == 1
    assert "git fetch took longer than 2s" in done.stderr and "Traceback" not in done.stderr
    assert seconds < 10
    time.sleep(0.2)
    assert helpers_talking_to(trickle.port) == [], "git's helpers were left running"


def test_clone_from_a_server_that_is_down_fails_fast(sandbox: Sandbox) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done, seconds = clone(sandbox, f"http://127.0.0.1:{port}/r.git", timeout="30")
    assert done.returncode == 1 and "git fetch failed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and seconds < 10


def test_local_run_with_an_unreachable_codeset_fails_cleanly(sandbox: Sandbox) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workflow = REPO / "tests" / "local" / "fixtures" / "codeset-wf.yaml"
    outcome = run_sluice(
        sandbox,
        "run",
        str(workflow),
        "--codeset",
        f"src=http://127.0.0.1:{port}/r.git",
        env={"SLUICE_ALLOW_LOCAL_GIT": "1"},
    )
    assert outcome.returncode == 1 and "git ls-remote failed" in outcome.stderr, outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_operator_ls_remote_against_a_trickling_server_times_out(
    trickle: TrickleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    git = pytest.importorskip(
        "controller.operator.codesets.git", reason="the operator's git module is missing"
    )
    import asyncio

    from controller.operator.codesets.spec import GitRef

    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    client = git.Git(git.GitLimits(ls_remote_timeout=1.5))
    started = time.monotonic()
    with pytest.raises(git.GitError) as failed:
        asyncio.run(
            client.ls_remote(f"http://127.0.0.1:{trickle.port}/r.git", GitRef("branch", "main"), None)
        )
    assert "timed out" in str(failed.value) and time.monotonic() - started < 8
    time.sleep(0.2)
    assert helpers_talking_to(trickle.port) == []
