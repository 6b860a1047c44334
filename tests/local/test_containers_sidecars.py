"""`sluice run --containers`: a task's sidecars and steps are containers of one podman pod, as in
the TaskRun's Kubernetes pod: a step reaches a sidecar on localhost, they share the task's
workspace, steps wait for the sidecars' readiness probes, the pod has only loopback, and the pod
with its containers is gone when the task ends, however it ends. Real containers, through the
engine tests/local/test_containers.py finds (skipped with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.executors.local.engines import Engine
from tests.local.test_containers import engine, run_contained, stages_image
from testsupport.pipelineruns import one_task_run, restricted_step

__all__ = ["engine", "stages_image"]  # the fixtures, shared with the container tests

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-token-for-the-sidecar-only"

# The server starts two seconds late: a step that did not wait for the httpGet probe would fail.
SERVER = """\
printf 'from the sidecar' > /workspace/data/note
{ id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -d '\\t'
  touch /probe 2>/dev/null && echo root-writable || echo root-read-only; } > /workspace/data/identity
sleep 2
exec python -m http.server 8080 --bind 127.0.0.1 --directory /workspace/data
"""
FETCH = """\
python - <<'END'
import socket, urllib.request
def result(name, text):
    open(f"/tekton/results/{name}", "w").write(text)
result("served", urllib.request.urlopen("http://localhost:8080/note", timeout=5).read().decode())
result("sidecar", urllib.request.urlopen("http://localhost:8080/identity", timeout=5).read().decode())
result("interfaces", ",".join(n for _, n in socket.if_nameindex()))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    result("network", "reached")
except OSError:
    result("network", "unreachable")
END
"""


def _with_sidecar(run: dict[str, Any], image: str, **fields: Any) -> dict[str, Any]:
    """`run` whose one task has a sidecar `server` keeping every restriction its steps have."""
    run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["sidecars"] = [
        restricted_step("server", image, **fields)
    ]
    return run


def _leftovers(engine: Engine, run: str) -> list[str]:
    """Pods and containers of the run still known to the engine."""
    pods = engine.run("pod", "ps", "--format", "{{.Name}}").stdout.split()
    containers = engine.run("ps", "--all", "--format", "{{.Names}}").stdout.split()
    return [name for name in [*pods, *containers] if name.startswith(f"sluice-{run}-")]


def test_a_step_reaches_its_ready_sidecar_on_localhost_and_they_share_the_workspace(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    steps = [restricted_step("fetch", stages_image, script=FETCH)]
    run = one_task_run(
        "pod-http", "fetch", steps, results=("served", "sidecar", "interfaces", "network"), workspace="data"
    )
    probe = {"httpGet": {"path": "/note", "port": 8080}, "periodSeconds": 1}
    _with_sidecar(run, stages_image, script=SERVER, readinessProbe=probe)
    # no probe, exits at once: ready as it ends, and its exit code 4 does not fail the task
    oneshot = restricted_step("oneshot", stages_image, script='echo "done $TOKEN"; exit 4')
    oneshot["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["sidecars"].append(oneshot)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}
    data = run_contained(tmp_path, engine, {**secret, "stringData": {"token": SECRET}}, run)
    outputs = data["steps"][0]["results"]
    assert outputs["served"] == "from the sidecar", "the sidecar's server, on the pod's localhost"
    # the restrictions of its steps: their uid, no capabilities, no-new-privileges, read-only root
    assert outputs["sidecar"].split() == [
        "65532",
        "CapEff:0000000000000000",
        "NoNewPrivs:1",
        "root-read-only",
    ]
    assert outputs["interfaces"] == "lo", "no network beyond the pod's loopback"
    assert outputs["network"] == "unreachable"
    log = (tmp_path / "runs" / data["run"] / "logs" / "fetch.sidecar-server.log").read_text()
    assert '"GET /note HTTP/1.1" 200' in log, "the sidecar's own log"
    oneshot_log = (tmp_path / "runs" / data["run"] / "logs" / "fetch.sidecar-oneshot.log").read_text()
    assert oneshot_log.splitlines() == ["done ***", "--- sidecar oneshot exited with code 4"], "redacted"
    files = [p for p in (tmp_path / "runs" / data["run"]).rglob("*") if p.is_file()]
    assert not [p for p in files if SECRET in p.read_text(errors="replace")], (
        "the secret is nowhere in the run"
    )
    assert _leftovers(engine, data["run"]) == [], "the pod and its containers are removed"


def test_steps_wait_for_an_exec_probe_and_a_failing_step_still_removes_the_pod(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    late = "sleep 2; printf ready > /workspace/data/ready; exec sleep 600"
    probe = {"exec": {"command": ["cat", "/workspace/data/ready"]}}
    check = "cat /workspace/data/ready > $(results.seen.path); exit 3"
    steps = [restricted_step("check", stages_image, script=check)]
    run = one_task_run("pod-exec", "check", steps, results=("seen",), workspace="data")
    data = run_contained(
        tmp_path, engine, _with_sidecar(run, stages_image, script=late, readinessProbe=probe), code=1
    )
    task = data["steps"][0]
    assert task["phase"] == "Failed" and "exited with code 3" in task["message"], task
    assert _leftovers(engine, data["run"]) == [], "the sleeping sidecar is stopped with its pod"


def test_a_sidecar_never_ready_times_the_task_out_before_any_step_runs(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    steps = [restricted_step("wait", stages_image, script="echo started")]
    run = one_task_run("pod-never", "wait", steps)
    run["spec"]["pipelineSpec"]["tasks"][0]["timeout"] = "6s"
    probe = {"tcpSocket": {"port": 9}}  # nothing listens there
    data = run_contained(
        tmp_path,
        engine,
        _with_sidecar(run, stages_image, script="exec sleep 600", readinessProbe=probe),
        code=1,
    )
    task = data["steps"][0]
    assert (task["phase"], task["reason"]) == ("Failed", "TaskRunTimeout"), task
    log = tmp_path / "runs" / data["run"] / "logs" / "wait.log"
    assert "started" not in (log.read_text() if log.exists() else ""), "no step ran"
    assert _leftovers(engine, data["run"]) == []


def test_a_cancelled_run_leaves_no_pod(tmp_path: Path, engine: Engine, stages_image: str) -> None:
    steps = [restricted_step("nap", stages_image, script="sleep 120")]
    run = _with_sidecar(one_task_run("pod-cancel", "nap", steps), stages_image, script="exec sleep 600")
    (tmp_path / "in.yaml").write_text(yaml.safe_dump(run), encoding="utf-8")
    argv = [sys.executable, "-m", "controller.cli.main", "run", "in.yaml", "--json"]
    env = {**os.environ, "SLUICE_HOME": str(tmp_path)}
    engine_name = Path(engine.command).name
    proc = subprocess.Popen(
        [*argv, f"--containers={engine_name}"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while len(_leftovers(engine, "pod-cancel")) < 3:  # the pod, its sidecar, its step
            assert time.monotonic() < deadline and proc.poll() is None, "the pod never ran its step"
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _leftovers(engine, "pod-cancel") == [], "the pod, its sidecar and its step are removed"


def test_a_sidecar_image_of_another_id_is_no_cache_hit(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    """The cache key holds each sidecar image's id, as each step image's: what serves a step counts."""
    tag = "localhost/sluice-test-sidecar:cache"
    steps = [restricted_step("say", stages_image, script="echo said")]
    run = one_task_run("pod-cache", "say", steps)
    run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["sidecars"] = [{"name": "entry", "image": tag}]
    try:  # no command: the image's own entrypoint (the stages image's exits, the pause image's waits)
        assert engine.run("tag", stages_image, tag).returncode == 0
        first = run_contained(tmp_path, engine, run)["steps"][0]
        again = run_contained(tmp_path, engine, run)["steps"][0]
        listed = engine.run(
            "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=*/podman-pause"
        )
        assert engine.run("tag", listed.stdout.split()[0], tag).returncode == 0  # the pods' own image
        other = run_contained(tmp_path, engine, run)["steps"][0]
    finally:
        engine.run("untag", tag)  # that name only
    assert (first["phase"], first.get("cached", False), again.get("cached")) == ("Succeeded", False, True)
    assert (other["phase"], other.get("cached", False)) == ("Succeeded", False), "another image: run again"
