"""`python -m stages.serve --no-guard`: the model call alone (no skew guard, statistics or request
metrics), the server `python -m benchmarks serve` measures the guard's cost against."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stages.serving_protocol import INPUT_NAME
from tests.stages.conftest import Trained

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _call(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


@pytest.mark.timeout(180)
def test_no_guard_answers_without_flags_statistics_or_request_metrics(
    random_pairs: Trained, tmp_path: Path
) -> None:
    port = _free_port()
    stats = tmp_path / "stats.json"
    command = [sys.executable, "-m", "stages.serve", "--model-dir", str(random_pairs.model)]
    command += ["--name", "adder", "--port", str(port), "--stats-file", str(stats), "--no-guard"]
    server = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _call(f"{base}/v2/models/adder/ready")[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        rows = [[300.0, 400.0], [10.0, 10000.0]]  # the second far outside the training range
        body = {"inputs": [{"name": INPUT_NAME, "shape": [2, 2], "datatype": "FP32", "data": rows}]}
        status, headers, content = _call(f"{base}/v2/models/adder/infer", json.dumps(body).encode())
        answer = json.loads(content)
        assert status == 200 and abs(answer["outputs"][0]["data"][0] - 700.0) < 25
        assert "sluice-out-of-range" not in headers and "parameters" not in answer
        metrics = _call(f"{base}/metrics")[2].decode()
        assert 'sluice_requests_total{code="200"' not in metrics and "sluice_requests_total{" not in metrics
        assert "sluice_out_of_range_rows_total{" not in metrics
        time.sleep(1.2)
        _call(f"{base}/v2/models/adder/infer", json.dumps(body).encode())
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not stats.exists()  # no statistics kept, so none written
