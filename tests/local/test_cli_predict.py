"""`sluice predict` takes negative numbers as values while its options keep working.

The model is a small Open Inference Protocol v2 server over real HTTP that answers the sum of each
row and keeps what it was sent (no TensorFlow needed to test the command line).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from controller.cli.parsing import values_after_options
from tests.local.test_cli import sluice


class _SumModel(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body)
        tensor = body["inputs"][0]
        rows, width = tensor["shape"]
        data = tensor["data"]
        sums = [sum(data[r * width : (r + 1) * width]) for r in range(rows)]
        output = {"name": "y", "shape": [rows, 1], "datatype": "FP32", "data": sums}
        answer = json.dumps({"outputs": [output]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def model() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SumModel)
    _SumModel.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/models/sum/infer", _SumModel.received
    finally:
        server.shutdown()
        server.server_close()


def test_negative_numbers_are_values(home: Path, model: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = model
    done = sluice(home, "predict", url, "-5", "-7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[-5, -7] -> -12.0000"
    assert received[-1]["inputs"][0]["data"] == [-5.0, -7.0]

    # options before, between and after the values; exponents, decimals, `--` as usual
    done = sluice(home, "predict", "--timeout", "5", url, "-0.5", "-1e1", "--timeout=5", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[-0.5, -10, 3] -> -7.5000"
    done = sluice(home, "predict", url, "-5", "--", "-6")
    assert done.stdout.strip() == "[-5, -6] -> -11.0000", done.stderr


def test_real_options_still_work_and_a_mistyped_one_is_still_an_error(
    home: Path, model: tuple[str, list[dict[str, Any]]]
) -> None:
    url, _ = model
    done = sluice(home, "predict", url, "--rows", "[[-1, -2], [3, 4]]")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[-1, -2] -> -3.0000", "[3, 4] -> 7.0000"]
    wrong = sluice(home, "predict", url, "-5", "--tmeout", "3")
    assert wrong.returncode == 2
    assert "No such option: --tmeout" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    helped = sluice(home, "predict", "-h")
    assert helped.returncode == 0 and "Usage:" in helped.stdout


def test_parsing_moves_options_first_and_keeps_the_values_in_order() -> None:
    from typer.main import get_command

    from controller.cli.main import app

    command = get_command(app).commands["predict"]  # type: ignore[attr-defined]
    params = command.get_params(command.make_context("predict", ["x"]))
    assert values_after_options(["m", "-5", "--timeout", "3", "-7"], params) == [
        "--timeout",
        "3",
        "--",
        "m",
        "-5",
        "-7",
    ]
    assert values_after_options(["-inf", "m"], params) == ["--", "-inf", "m"]
    assert values_after_options(["--rows", "[[1]]", "m"], params) == ["--rows", "[[1]]", "--", "m"]
