"""`sluice operator` as a process, against the emulated API server over plain HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.operator.conftest import Api, eventually
from tests.operator.test_workflows import sum_of_two, workflow_condition
from testsupport.gitserver import free_port
from testsupport.processes import start_operator_process

ROOT = Path(__file__).resolve().parents[2]


async def test_sluice_operator_runs_against_any_kubeconfig_and_stops_cleanly(api: Api) -> None:
    port = free_port()
    process = start_operator_process(
        api.server.kubeconfig, port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        await api.apply(sum_of_two())
        ready = await eventually(
            lambda: workflow_condition(api, "sum-of-two", "Ready"), timeout=30, what="Ready"
        )
        assert ready["status"] == "True"

        async def readyz() -> bool:
            async with api.session.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status == 200

        assert await eventually(readyz, what="readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.get_running_loop().run_in_executor(None, process.communicate, None)
    assert process.returncode == 0, output.decode()[-2000:]
    assert b"Traceback" not in output


def test_sluice_operator_without_credentials_fails_on_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "missing"),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "operator", "--metrics-port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_cluster_endpoints_without_a_cluster_fail_on_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "endpoints", "--cluster"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("sluice endpoints --cluster: cannot read Kubernetes credentials")
    assert len(result.stderr.strip().splitlines()) == 1
