"""Sidecars in the local executor: started before the steps, ready by their probe, stopped after."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local import pods
from controller.executors.local.engines import Engine
from controller.executors.local.pipelinerun_check import check_pipelinerun
from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import alive, pipelinerun, run_local, script_task


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _with_sidecars(task: dict[str, Any], *sidecars: dict[str, Any]) -> dict[str, Any]:
    task["taskSpec"]["sidecars"] = list(sidecars)
    return task


def test_steps_start_once_an_http_sidecar_is_ready_and_it_is_stopped_after(
    home: Path, tmp_path: Path
) -> None:
    port, pid_file = _free_port(), tmp_path / "server.pid"
    server = {
        "name": "server",
        "image": "python",
        # slow to start on purpose: the step must not run before the probe passes
        "script": f"#!/bin/sh\necho $$ > {pid_file}\nsleep 1\necho hello > index.html\n"
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1",
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": port}},
    }
    client = script_task(
        "client",
        f'{sys.executable} -c "import urllib.request; print(urllib.request.urlopen('
        f"'http://127.0.0.1:{port}/index.html').read().decode().strip())\" > $(results.body.path)",
        results=[{"name": "body"}],
    )
    record = run_local(pipelinerun("sidecar-http", [_with_sidecars(client, server)]), home)
    assert record.phase == "Succeeded", record.tasks["client"].message
    assert record.tasks["client"].results == {"body": "hello\n"}
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the sidecar outlived its task"
    assert "GET /index.html" in (home / "runs/sidecar-http/logs/client.sidecar-server.log").read_text()


def test_exec_and_tcp_probes_gate_the_first_step(home: Path, tmp_path: Path) -> None:
    flag, port = tmp_path / "ready", _free_port()
    waits = {
        "name": "waits",
        "image": "x",
        "script": f"sleep 1; touch {flag}; sleep 60",
        "readinessProbe": {"exec": {"command": ["test", "-f", str(flag)]}},
    }
    listens = {
        "name": "listens",
        "image": "x",
        "command": [sys.executable, "-c"],
        "args": [
            "import socket, time; time.sleep(1); s = socket.socket(); "
            f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
        ],
        "readinessProbe": {"tcpSocket": {"port": port}, "initialDelaySeconds": 0},
    }
    step = script_task("t", f"test -f {flag} && printf ok > $(results.r.path)", results=[{"name": "r"}])
    record = run_local(pipelinerun("sidecar-probes", [_with_sidecars(step, waits, listens)]), home)
    assert record.tasks["t"].results == {"r": "ok"}


def test_readiness_is_probed_only_once_the_startup_probe_passed(home: Path, tmp_path: Path) -> None:
    """Kubernetes checks a container's readinessProbe after its startupProbe passed (Tekton's
    sidecar-ready example gates its step on a startupProbe); the steps wait for both."""
    started, ready = tmp_path / "started", tmp_path / "ready"
    car = {
        "name": "slow",
        "image": "x",
        "command": ["sleep", "60"],
        "startupProbe": {
            "exec": {"command": ["sh", "-c", f"sleep 1 && touch {started}"]},
            "timeoutSeconds": 10,
        },
        # passes only once the startup probe ran (it makes the file)
        "readinessProbe": {"exec": {"command": ["sh", "-c", f"test -f {started} && touch {ready}"]}},
    }
    step = script_task(
        "t", f"cat {started} {ready} && printf ok > $(results.r.path)", results=[{"name": "r"}]
    )
    record = run_local(pipelinerun("sidecar-startup", [_with_sidecars(step, car)]), home)
    assert record.tasks["t"].results == {"r": "ok"}
    bad = {**car, "startupProbe": {"grpc": {"port": 1}}}
    with pytest.raises(
        UnsupportedError, match=r"sidecars\[0\]\.startupProbe\.grpc: Tekton field not supported"
    ):
        check_pipelinerun(pipelinerun("c", [_with_sidecars(script_task("t", "true"), bad)]))


def test_a_sidecar_that_exits_counts_as_ready_and_does_not_fail_the_task(home: Path) -> None:
    quits = {
        "name": "quits",
        "image": "x",
        "script": "echo 'Hello from sidecar!'; exit 3",
        "readinessProbe": {"exec": {"command": ["false"]}},  # never passes: its exit makes it ready
    }
    task = _with_sidecars(script_task("t", "sleep 1", timeout="20s"), quits)
    record = run_local(pipelinerun("sidecar-exits", [task]), home)
    assert record.phase == "Succeeded"
    log = home / "runs/sidecar-exits/logs/t.sidecar-quits.log"
    assert log.read_text() == "Hello from sidecar!\n--- sidecar quits exited with code 3\n"


def test_a_sidecar_never_ready_keeps_the_steps_waiting_until_the_task_timeout(
    home: Path, tmp_path: Path
) -> None:
    never = {
        "name": "never",
        "image": "x",
        "script": "sleep 60",
        "readinessProbe": {"exec": {"command": ["false"]}},
    }
    marker = tmp_path / "ran"
    task = _with_sidecars(script_task("t", f"touch {marker}", timeout="2s"), never)
    started = time.monotonic()
    record = run_local(pipelinerun("sidecar-never", [task]), home)
    assert time.monotonic() - started < 10
    assert (record.tasks["t"].phase, record.tasks["t"].reason) == ("Failed", "TaskRunTimeout")
    assert not marker.exists()


def test_a_sidecar_that_cannot_start_fails_its_task_before_any_step(home: Path, tmp_path: Path) -> None:
    missing = {"name": "missing", "image": "x", "command": ["no-such-program-here"]}
    marker = tmp_path / "ran"
    record = run_local(
        pipelinerun("sidecar-missing", [_with_sidecars(script_task("t", f"touch {marker}"), missing)]), home
    )
    assert record.tasks["t"].phase == "Failed"
    assert "'no-such-program-here' is not installed" in record.tasks["t"].message
    assert not marker.exists()


def test_sidecar_mounts_and_probes_checked_before_the_run() -> None:
    car = {"name": "s", "image": "x", "script": "true"}
    check_pipelinerun(pipelinerun("c", [_with_sidecars(script_task("t", "true"), car)]), containers=True)
    stray = {**car, "volumeMounts": [{"name": "nowhere", "mountPath": "/data"}]}
    obj = pipelinerun("c", [_with_sidecars(script_task("t", "true"), stray)])
    with pytest.raises(
        UnsupportedError, match=r"sidecars\[0\]\.volumeMounts\[0\]\.name: the task has no volume"
    ):
        check_pipelinerun(obj, containers=True)
    bare = {"name": "s", "image": "x"}  # the image's entrypoint: only in its image
    obj = pipelinerun("c", [_with_sidecars(script_task("t", "true"), bare)])
    check_pipelinerun(obj, containers=True)
    with pytest.raises(UnsupportedError, match=r"sidecars\[0\]: no command or script.*use --containers"):
        check_pipelinerun(obj)
    named = {**car, "readinessProbe": {"httpGet": {"port": "http"}}}
    obj = pipelinerun("c", [_with_sidecars(script_task("t", "true"), named)])
    with pytest.raises(UnsupportedError, match=r"readinessProbe\.httpGet\.port: a port number is needed"):
        check_pipelinerun(obj)
    grpc = {**car, "readinessProbe": {"grpc": {"port": 1}}}
    obj = pipelinerun("c", [_with_sidecars(script_task("t", "true"), grpc)])
    with pytest.raises(UnsupportedError, match=r"readinessProbe\.grpc: Tekton field not supported"):
        check_pipelinerun(obj)


def test_a_sidecar_mounting_a_workspace_volume_at_its_path_shares_it_with_the_steps(home: Path) -> None:
    task = script_task(
        "t",
        "echo hello > $(workspaces.signals.path)/greeting\n"
        "while [ ! -f $(workspaces.signals.path)/reply ]; do sleep 0.1; done\n"
        "cat $(workspaces.signals.path)/reply > $(results.reply.path)",
        workspaces=[{"name": "signals"}],
        results=[{"name": "reply"}],
        timeout="30s",
    )
    task["workspaces"] = [{"name": "signals", "workspace": "ws"}]
    helper = {
        "name": "helper",
        "image": "x",
        "volumeMounts": [{"name": "$(workspaces.signals.volume)", "mountPath": "$(workspaces.signals.path)"}],
        "script": "while [ ! -f $(workspaces.signals.path)/greeting ]; do sleep 0.1; done\n"
        'printf "got %s" "$(cat $(workspaces.signals.path)/greeting)" > $(workspaces.signals.path)/reply',
    }
    obj = pipelinerun("sidecar-ws", [_with_sidecars(task, helper)], workspaces=[{"name": "ws"}])
    obj["spec"]["workspaces"] = [{"name": "ws", "emptyDir": {}}]
    record = run_local(obj, home)
    assert record.tasks["t"].results == {"reply": "got hello"}

    elsewhere = {**helper, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    obj = pipelinerun("sidecar-mount", [_with_sidecars(script_task("t", "true"), elsewhere)])
    with pytest.raises(
        UnsupportedError, match=r"sidecars\[0\]\.volumeMounts\[0\]: a host process can only mount"
    ):
        check_pipelinerun(obj)


def test_sidecars_under_docker_are_refused_before_the_run_naming_the_task() -> None:
    task = _with_sidecars(script_task("t", "true"), {"name": "s", "image": "x", "script": "true"})
    pods.refuse_without_pods(Engine("/usr/bin/podman", {}), [("$.spec.pipelineSpec.tasks[0]", task)])
    with pytest.raises(
        UnsupportedError, match=r"tasks\[0\]\.taskSpec\.sidecars: .*need podman.*docker has no pods"
    ):
        pods.refuse_without_pods(Engine("/usr/bin/docker", {}), [("$.spec.pipelineSpec.tasks[0]", task)])
