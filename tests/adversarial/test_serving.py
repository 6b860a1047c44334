"""Hostile requests against the real local model server (`stages.serve`, KServe's ModelServer over
HTTP on 127.0.0.1), serving a tiny model trained once for this module. Every bad request is a 4xx
with a message saying what was expected, answered quickly; the server keeps serving afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.adversarial.conftest import REPO
from tests.stages.conftest import prepare, train
from testsupport.gitserver import free_port

pytestmark = pytest.mark.slow  # trains a (tiny) network once
MODEL = "adder"
LIMIT = 4 * 1024 * 1024  # the server's default body limit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    tmp = tmp_path_factory.mktemp("serving")
    dataset = prepare(tmp, "sum-of-two", "--samples", "400")
    model, _ = train(
        tmp, dataset, "--layers", '[{"dense":4,"activation":"relu"},{"dense":1}]', "--epochs", "1"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stages.serve",
            "--model-dir",
            str(model),
            "--name",
            MODEL,
            "--port",
            str(port),
        ],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the model server exited"
            try:
                if request(port, "GET", f"/v2/models/{MODEL}/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the model server did not become ready"
            time.sleep(0.2)
        yield port, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, Any, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = raw.decode(errors="replace")
    return response.status, data, time.monotonic() - started


def infer(port: int, body: bytes, **kwargs: Any) -> tuple[int, Any, float]:
    return request(port, "POST", f"/v2/models/{MODEL}/infer", body, **kwargs)


def tensor(shape: Any, datatype: Any = "FP32", data: Any = None, name: str = "inputs") -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": shape,
                    "datatype": datatype,
                    "data": [1.0, 2.0] if data is None else data,
                }
            ]
        }
    ).encode()


BAD = [
    ("three-features", tensor([1, 3], data=[1, 2, 3]), "expected [N, 2]"),
    ("one-dimensional", tensor([2]), "expected [N, 2]"),
    ("three-dimensional", tensor([1, 1, 2]), "expected [N, 2]"),
    ("zero-rows", tensor([0, 2], data=[]), "expected [N, 2]"),
    ("negative-rows", tensor([-1, 2]), "expected [N, 2]"),
    ("shape-claims-a-trillion-rows", tensor([10**12, 2]), "values for shape"),
    ("size-mismatch", tensor([2, 2]), "2 values for shape [2, 2]"),
    ("bytes", tensor([1, 2], "BYTES", ["a", "b"]), "expected FP32"),
    ("unknown-datatype", tensor([1, 2], "FP1024"), ""),
    ("strings-as-fp32", tensor([1, 2], data=["a", "b"]), "numbers"),
    ("ragged", tensor([2, 2], data=[[1, 2], [3]]), ""),
    ("null-data", tensor([1, 2], data=[None, None]), ""),
    ("nan", b'{"inputs":[{"name":"inputs","shape":[1,2],"datatype":"FP32","data":[NaN, 1]}]}', ""),
    ("infinity", b'{"inputs":[{"name":"inputs","shape":[1,2],"datatype":"FP32","data":[Infinity, 1]}]}', ""),
    (
        "two-inputs",
        json.dumps({"inputs": [json.loads(tensor([1, 2]))["inputs"][0]] * 2}).encode(),
        "exactly one",
    ),
    ("no-inputs", b'{"inputs": []}', "exactly one input"),
    ("inputs-not-a-list", b'{"inputs": "x"}', ""),
    ("top-level-list", b"[1, 2]", ""),
    ("non-json", b"{this is not json", "not valid JSON"),
    ("empty-body", b"", ""),
    ("binary-garbage", bytes(range(256)) * 4, ""),
    (
        "deeply-nested-data",
        b'{"inputs":[{"name":"inputs","shape":[1,2],"datatype":"FP32","data":'
        + b"[" * 100_000
        + b"1"
        + b"]" * 100_000
        + b"}]}",
        "",
    ),
    ("shape-as-string", tensor("1,2"), ""),
    ("huge-shape-number", tensor([10**400, 2]), ""),
]


@pytest.mark.parametrize(("case", "body", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_request_is_a_clear_4xx(server: tuple[int, Any], case: str, body: bytes, fragment: str) -> None:
    port, process = server
    status, answer, seconds = infer(port, body)
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict), answer
    # the v2 protocol's {"error": ...}; FastAPI's own {"detail": ...} only for a body its JSON parser
    # gives up on (nesting deeper than Python's recursion limit)
    message = (
        answer.get("error") if case != "deeply-nested-data" else answer.get("error", answer.get("detail"))
    )
    assert message is not None and fragment in str(message), answer
    assert "Traceback" not in str(answer)
    assert seconds < 1.0, f"{seconds:.2f}s"
    assert process.poll() is None


def test_binary_tensor_with_a_lying_header(server: tuple[int, Any]) -> None:
    port, _ = server
    header = tensor([1, 2], data=[])
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 3},
                }
            ]
        }
    ).encode()
    body = header + b"\x00\x01\x02"
    status, answer, _ = infer(port, body, headers={"Inference-Header-Content-Length": str(len(header))})
    assert 400 <= status < 500, (status, answer)


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response as a client reads it: headers, then Content-Length bytes of body (which
    may arrive in a later segment than the headers), or until the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            return data
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        ),
        None,
    )
    while length is not None and len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return head + b"\r\n\r\n" + body


def test_100_mb_body_is_refused_before_it_is_read(server: tuple[int, Any]) -> None:
    port, process = server
    size = 100 * 1024 * 1024
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        sock.sendall(b"[" * 65536)  # a little of it: the answer comes without the rest
        reply = read_response(sock).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert f"exceeds {LIMIT} bytes" in reply
    assert time.monotonic() - started < 2
    assert process.poll() is None


def test_100_mb_chunked_body_without_end_gets_413(server: tuple[int, Any]) -> None:
    """A chunked body has no length to check up front. The server answers 413 after a bounded
    amount even while the body is still coming (100 MB, never terminated): it does not wait for
    an end that may never come. (uvicorn then discards whatever else arrives.)"""
    port, process = server
    chunk = b"1," * 512 * 1024  # 1 MiB
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(100):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = read_response(sock)  # no terminating chunk was sent
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert f"exceeds {LIMIT} bytes".encode() in reply
    assert process.poll() is None


def test_server_still_answers_correctly_after_all_that(server: tuple[int, Any]) -> None:
    port, process = server
    status, answer, _ = infer(port, tensor([2, 2], data=[1.0, 2.0, 3.0, 4.0]))
    assert status == 200, answer
    assert answer["outputs"][0]["shape"] == [2, 1]
    assert request(port, "GET", "/v2/health/live")[0] == 200
    assert process.poll() is None


# issue 16: any web page could POST to the model server (poisoning its serving statistics), and a
# page whose name was rebound to 127.0.0.1 could read its answers
FOREIGN = [
    ("rebound-name", {"Host": "attacker.example:{port}"}),
    ("rebound-name-no-port", {"Host": "attacker.example"}),
    ("loopback-other-port", {"Host": "127.0.0.1:1"}),
    ("localhost-no-port", {"Host": "localhost"}),
    ("cross-origin", {"Origin": "http://attacker.example"}),
    ("cross-origin-null", {"Origin": "null"}),
    ("cross-origin-other-port", {"Origin": "http://127.0.0.1:1"}),
    ("cross-origin-https", {"Origin": "https://127.0.0.1:{port}"}),
]


@pytest.mark.parametrize(("case", "headers"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_foreign_host_or_origin_is_refused(
    server: tuple[int, Any], case: str, headers: dict[str, str]
) -> None:
    port, process = server
    headers = {k: v.replace("{port}", str(port)) for k, v in headers.items()}
    for method, path, body in (
        ("POST", f"/v2/models/{MODEL}/infer", tensor([1, 2])),
        ("POST", f"/v1/models/{MODEL}:predict", b'{"instances": [[1, 2]]}'),
        ("GET", f"/v2/models/{MODEL}", None),
        ("GET", "/metrics", None),
    ):
        status, answer, _ = request(port, method, path, body, headers=headers)
        assert status == 403, (method, path, status, answer)
    assert process.poll() is None


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_loopback_host_and_same_origin_are_served(server: tuple[int, Any], host: str) -> None:
    port, _ = server
    host = host.replace("{port}", str(port))
    same = {"Host": host, "Origin": f"http://{host.lower()}"}
    status, answer, _ = request(port, "POST", f"/v1/models/{MODEL}:predict", b'{"instances": [[1, 2]]}', same)
    assert status == 200, answer
    assert request(port, "GET", f"/v2/models/{MODEL}", headers=same)[0] == 200
    assert request(port, "GET", "/v2/health/live", headers={"Host": host})[0] == 200


def test_cross_origin_posts_do_not_reach_the_statistics(server: tuple[int, Any]) -> None:
    port, _ = server

    def served() -> float:
        status, text, _ = request(port, "GET", "/metrics")
        assert status == 200
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in str(text).splitlines()
            if line.startswith("sluice_requests_total{") and f'model_name="{MODEL}"' in line
        )

    before = served()
    for _ in range(20):
        assert infer(port, tensor([1, 2]), headers={"Origin": "http://evil.example"})[0] == 403
    assert served() == before
