"""Open Inference Protocol conformance of the local model server, with the real clients (NVIDIA's
tritonclient[http] and KServe's InferenceRESTClient), KServe v1 `:predict`, and the skew guard."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.stages.conftest import Trained, run_stage

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home
        self.base = url.removesuffix("/v2/models/sum-of-two/infer")
        self.port = int(self.base.rsplit(":", 1)[1])

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connection()
        try:
            raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            connection.request(method, path, raw, headers or {"content-type": "application/json"})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def metrics(self) -> str:
        return self.request("GET", "/metrics")[2].decode()


@pytest.fixture(scope="module")
def server(random_pairs: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("conformance")
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLUICE_HOME", str(home))
        run = run_stage(
            "deploy",
            ["--model", str(random_pairs.model), "--target", "local"],
            tmp,
            ("url", "name"),
            env={"SLUICE_HOME": str(home), "SLUICE_WORKFLOW": "sum-of-two"},
        )
        assert run.returncode == 0, run.stderr
        try:
            yield Server(run.results["url"], home)
        finally:
            from stages.endpoints import stop_endpoint

            stop_endpoint("sum-of-two")


def triton(server: Server) -> Any:
    import tritonclient.http as triton_http

    return triton_http.InferenceServerClient(f"127.0.0.1:{server.port}")


def test_metadata_lists_inputs_outputs_platform_and_versions(server: Server) -> None:
    metadata = triton(server).get_model_metadata("sum-of-two")
    assert metadata["name"] == "sum-of-two" and metadata["versions"] == ["1"]
    assert metadata["platform"] == "tensorflow_keras"
    assert metadata["inputs"] == [{"name": "inputs", "datatype": "FP32", "shape": [-1, 2]}]
    assert metadata["outputs"] == [{"name": "output_0", "datatype": "FP32", "shape": [-1, 1]}]
    status, _, body = server.request("GET", "/v2/models/sum-of-two/versions/1")
    assert status == 200 and json.loads(body) == metadata
    assert server.request("GET", "/v2/models/nothing")[0] == 404


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
@pytest.mark.parametrize("dtype", ["FP32", "FP64", "INT32"])
def test_tritonclient_infers_json_and_binary(
    server: Server, binary_in: bool, binary_out: bool, dtype: str
) -> None:
    import tritonclient.http as triton_http

    rows = np.array(
        [[1, 2], [300, 400], [999, 0]], dtype={"FP32": np.float32, "FP64": np.float64}.get(dtype, np.int32)
    )
    tensor = triton_http.InferInput("inputs", list(rows.shape), dtype)
    tensor.set_data_from_numpy(rows, binary_data=binary_in)
    wanted = triton_http.InferRequestedOutput("output_0", binary_data=binary_out)
    result = triton(server).infer("sum-of-two", [tensor], outputs=[wanted])
    y = result.as_numpy("output_0")
    assert y.shape == (3, 1) and y.dtype == np.float32
    assert np.allclose(y.ravel(), rows.sum(axis=1), atol=15)
    output = result.get_output("output_0")
    assert ("binary_data_size" in (output.get("parameters") or {})) is binary_out
    assert ("data" in output) is not binary_out


def test_unknown_names_are_refused_by_name(server: Server) -> None:
    import tritonclient.http as triton_http
    from tritonclient.utils import InferenceServerException

    client = triton(server)
    rows = np.array([[1, 2]], np.float32)
    good = triton_http.InferInput("inputs", [1, 2], "FP32")
    good.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException, match="unknown output 'nope'"):
        client.infer("sum-of-two", [good], outputs=[triton_http.InferRequestedOutput("nope")])
    bad = triton_http.InferInput("pairs", [1, 2], "FP32")
    bad.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException, match="unknown input 'pairs'"):
        client.infer("sum-of-two", [bad])
    for body in (
        {"inputs": [{"name": "inputs", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]},
        {
            "inputs": [{"name": "inputs", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}],
            "outputs": "x",
        },
    ):
        status, _, answer = server.request("POST", "/v2/models/sum-of-two/infer", body)
        assert status == 400 and "error" in json.loads(answer)


def test_kserve_client_v2_and_v1(server: Server) -> None:
    from kserve import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    async def ask() -> tuple[Any, Any]:
        v2 = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=10))
        try:
            tensor = InferInput("inputs", [2, 2], "FP32")
            tensor.set_data_from_numpy(np.array([[3, 4], [10, 20]], np.float32), binary_data=False)
            answer = await v2.infer(
                server.base, InferRequest("sum-of-two", [tensor]), model_name="sum-of-two"
            )
            legacy = await v1.infer(server.base, {"instances": [[3, 4], [10, 20]]}, model_name="sum-of-two")
            return answer, legacy
        finally:
            await v2.close()
            await v1.close()

    answer, legacy = asyncio.run(ask())
    assert np.allclose(answer.outputs[0].as_numpy().ravel(), [7, 30], atol=15)
    assert np.allclose(np.ravel(legacy["predictions"]), [7, 30], atol=15)


def test_v1_predict_answers_and_the_connection_survives(server: Server) -> None:
    """Regression: `{"instances": ...}` on v1 was a 500 (AttributeError) and broke the connection."""
    connection = server.connection()
    try:
        for body, status in (
            ({"instances": [[3, 4]]}, 200),
            ({"inputs": [[3, 4], [1, 1]]}, 200),
            ({"instances": [[3, 4, 5]]}, 400),
            ({"instances": "x"}, 400),
            ({"something": 1}, 400),
            (b"{not json", 400),
            ({"instances": [[3, 4]]}, 200),
        ):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            connection.request(
                "POST", "/v1/models/sum-of-two:predict", raw, {"content-type": "application/json"}
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            assert response.status == status, (body, answer)
            assert ("predictions" in answer) if status == 200 else ("error" in answer)
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_model_repository_extension_routes(server: Server) -> None:
    """KServe's routes of the extension: the model lists, and load/unload answered in its shape."""
    status, _, body = server.request("GET", "/v2/models")
    assert status == 200 and "sum-of-two" in json.loads(body)["models"], body
    status, _, body = server.request("GET", "/v1/models")
    assert status == 200 and "sum-of-two" in json.loads(body)["models"]
    status, _, body = server.request("POST", "/v2/repository/models/nothing/unload", b"")
    assert status == 404 and "error" in json.loads(body), body
    status, _, body = server.request("POST", "/v2/repository/models/sum-of-two/load", b"")
    assert status == 200 and json.loads(body) == {"name": "sum-of-two", "load": True}, body


def test_the_skew_guard_flags_counts_and_warns(server: Server) -> None:
    """Trained on [0, 1000): 10 + 10000 is flagged in the answer, counted in /metrics, and
    `sluice predict` warns; in-range traffic raises nothing."""
    path = "/v2/models/sum-of-two/infer"
    body = {"inputs": [{"name": "inputs", "shape": [2, 2], "datatype": "FP32", "data": [3, 4, 10, 10000]}]}
    before = server.metrics()
    status, headers, raw = server.request("POST", path, body)
    answer = json.loads(raw)
    assert status == 200
    assert answer["parameters"] == {"sluice_out_of_range_rows": "1", "sluice_out_of_range_features": "x2"}
    assert headers["sluice-out-of-range"] == "rows=1; features=x2"
    after = server.metrics()

    def counted(text: str, feature: str) -> float:
        for line in text.splitlines():
            if line.startswith(
                f'sluice_out_of_range_rows_total{{feature="{feature}",model_name="sum-of-two"}}'
            ):
                return float(line.split()[-1])
        return 0.0

    assert counted(after, "x2") == counted(before, "x2") + 1 and counted(after, "x1") == counted(before, "x1")
    assert 'sluice_feature_drift_psi{feature="x1",model_name="sum-of-two"}' in after
    assert "sluice_request_seconds_bucket" in after and "sluice_requests_total" in after

    status, headers, raw = server.request(
        "POST", path, {"inputs": [{"name": "inputs", "shape": [1, 2], "datatype": "FP32", "data": [3, 4]}]}
    )
    assert status == 200 and "parameters" not in json.loads(raw) and "sluice-out-of-range" not in headers
    assert counted(server.metrics(), "x2") == counted(after, "x2")

    env = {**os.environ, "SLUICE_HOME": str(server.home), "PYTHONPATH": str(PROJECT)}
    cli = [sys.executable, "-m", "controller.cli.main", "predict", "sum-of-two"]
    far = subprocess.run([*cli, "10", "10000"], capture_output=True, text=True, env=env, timeout=60)
    assert far.returncode == 0, far.stderr
    assert "warning: [10, 10000] is outside the training range of x2" in far.stderr
    near = subprocess.run([*cli, "10", "20"], capture_output=True, text=True, env=env, timeout=60)
    assert near.returncode == 0 and "warning" not in near.stderr
    nan = subprocess.run([*cli, "nan", "2"], capture_output=True, text=True, env=env, timeout=60)
    assert nan.returncode == 1 and "NaN and infinite values cannot be sent" in nan.stderr
