"""The local KServe model server, deployed by sluice/deploy, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stages.endpoints import get_endpoint, list_endpoints, stop_endpoint
from tests.stages.conftest import Trained, run_stage

pytestmark = pytest.mark.slow


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def infer_body(
    rows: Any, shape: list[int] | None = None, datatype: str = "FP32", name: str = "inputs"
) -> bytes:
    flat = np.asarray(rows, dtype=np.float64).ravel().tolist()
    shape = shape or list(np.asarray(rows).shape)
    return json.dumps(
        {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": flat}]}
    ).encode()


def deploy(tmp: Path, model: Path, home: Path, *extra: str, env: dict[str, str] | None = None):
    return run_stage(
        "deploy",
        ["--model", str(model), *extra],
        tmp,
        ("url", "name"),
        env={"SLUICE_HOME": str(home), "SLUICE_WORKFLOW": "sum-of-two", **(env or {})},
    )


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_local_server_answers_like_the_model_and_rejects_bad_requests(
    random_pairs: Trained, sluice_home: Path, tmp_path: Path
) -> None:
    run = deploy(tmp_path, random_pairs.model, sluice_home, "--target", "local")
    assert run.returncode == 0, run.stderr
    url = run.results["url"]
    endpoint = get_endpoint("sum-of-two")
    assert endpoint is not None and run.results["name"] == "sum-of-two"
    assert url == f"http://127.0.0.1:{endpoint.port}/v2/models/sum-of-two/infer" == endpoint.url
    registered = json.loads((sluice_home / "endpoints" / "sum-of-two.json").read_text())
    assert {"name", "url", "pid", "port", "model_dir", "started_at"} <= set(registered)
    assert registered["model_dir"] == str(random_pairs.model)

    # Correct answers: the model's own output, for a batch.
    from stages.model_dir import load_model_dir

    _, model = load_model_dir(random_pairs.model)
    rows = np.array([[1.5, 2.5], [300.0, 400.0], [999.0, 0.5]], dtype=np.float32)
    status, answer = post(url, infer_body(rows))
    assert status == 200, answer
    output = answer["outputs"][0]
    assert output["shape"] == [3, 1] and output["datatype"] == "FP32"
    assert np.allclose(output["data"], model(rows, training=False).numpy().ravel(), atol=1e-4)
    assert np.allclose(output["data"], rows.sum(axis=1), atol=15)

    # Concurrent requests share model calls; each still gets the answers to its own rows.
    rng = np.random.default_rng(5)
    batches = [rng.uniform(0, 1000, size=(1 + i % 5, 2)).astype(np.float32) for i in range(48)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda b: post(url, infer_body(b)), batches))
    for batch, (status, answer) in zip(batches, replies, strict=True):
        assert status == 200, answer
        assert answer["outputs"][0]["shape"] == [len(batch), 1]
        expected = model(batch, training=False).numpy().ravel()
        assert np.allclose(answer["outputs"][0]["data"], expected, atol=1e-3)

    base = url.removesuffix("/v2/models/sum-of-two/infer")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/sum-of-two/ready"):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            assert response.status == 200
    # KServe's request metrics count the requests answered on the fast infer route.
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'request_predict_seconds_count{model_name="sum-of-two"} 49.0' in metrics

    bad = {
        "wrong shape": (infer_body([[1, 2, 3]]), "expected [N, 2]"),
        "wrong datatype": (infer_body([[1, 2]], datatype="BOOL"), "is not numeric"),
        "unknown input": (infer_body([[1, 2]], name="pairs"), "unknown input 'pairs'"),
        "wrong size": (infer_body([1, 2, 3], shape=[2, 2]), "3 values for shape [2, 2]"),
        "non-JSON": (b"{this is not json", "not valid JSON"),
        "no inputs": (b'{"inputs": []}', "exactly one input"),
        "strings": (
            b'{"inputs":[{"name":"inputs","shape":[1,2],"datatype":"FP32","data":["a","b"]}]}',
            "numbers",
        ),
    }
    for case, (body, message) in bad.items():
        status, answer = post(url, body)
        assert status == 400, case
        assert message in answer["error"], (case, answer)
    status, answer = post(url, b" " * (5 * 1024 * 1024))
    assert status == 413 and "exceeds" in answer["error"]
    # The server keeps serving after bad requests.
    assert post(url, infer_body([[2.0, 2.0]]))[0] == 200

    # Stopping: the process group ends, the port closes, the registration goes.
    assert stop_endpoint("sum-of-two") is True
    assert not port_open(endpoint.port)
    assert (
        not Path(f"/proc/{endpoint.pid}").exists()
        or b"stages.serve" not in Path(f"/proc/{endpoint.pid}/cmdline").read_bytes()
    )
    assert list_endpoints() == []
    assert stop_endpoint("sum-of-two") is False


def test_local_executor_serves_locally_whatever_the_target_and_redeploy_replaces(
    random_pairs: Trained, sluice_home: Path, tmp_path: Path
) -> None:
    first = deploy(
        tmp_path / "1",
        random_pairs.model,
        sluice_home,
        "--target",
        "kserve",
        "--name",
        "adder",
        env={"SLUICE_EXECUTOR": "local"},
    )
    assert first.returncode == 0, first.stderr
    old = get_endpoint("adder")
    assert old is not None and first.results["url"].endswith("/v2/models/adder/infer")
    second = deploy(tmp_path / "2", random_pairs.model, sluice_home, "--target", "local", "--name", "adder")
    assert second.returncode == 0, second.stderr
    new = get_endpoint("adder")
    assert new is not None and new.pid != old.pid
    assert not port_open(old.port) and port_open(new.port)
    assert [e.name for e in list_endpoints()] == ["adder"]


def test_served_feature_statistics_feed_the_skew_check(
    equal_pairs: Trained, random_pairs: Trained, sluice_home: Path, tmp_path: Path
) -> None:
    """Real traffic of unequal pairs to the equal-pairs model shows up as skew in sluice/evaluate."""
    run = deploy(tmp_path, equal_pairs.model, sluice_home, "--target", "local", "--name", "equal")
    assert run.returncode == 0, run.stderr
    rng = np.random.default_rng(4)
    for _ in range(3):
        assert post(run.results["url"], infer_body(rng.uniform(0, 1000, size=(200, 2))))[0] == 200
    endpoint = get_endpoint("equal")
    assert endpoint is not None
    stop_endpoint("equal")  # the server writes its statistics on the way out
    stats = json.loads(Path(endpoint.stats).read_text())
    assert stats["rows"] == 600
    scored = run_stage(
        "evaluate",
        [
            "--model",
            str(equal_pairs.model),
            "--dataset",
            str(equal_pairs.dataset),
            "--serving-stats",
            endpoint.stats,
        ],
        tmp_path,
        ("skew",),
    )
    assert scored.returncode == 0, scored.stderr
    assert float(scored.results["skew"]) > 0.9


def test_deploy_failures_are_one_line(tmp_path: Path, sluice_home: Path) -> None:
    run = deploy(tmp_path, tmp_path / "no-model", sluice_home, "--target", "local")
    assert run.returncode == 1 and "is not a model directory" in run.stderr
    run = deploy(tmp_path, tmp_path, sluice_home, "--target", "local", "--name", "Not_A_Name")
    assert run.returncode == 1 and "DNS label" in run.stderr
    run = deploy(tmp_path, tmp_path, sluice_home, "--target", "mars")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert os.listdir(sluice_home / "endpoints") == [] if (sluice_home / "endpoints").exists() else True
