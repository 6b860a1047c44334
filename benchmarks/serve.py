"""`python -m benchmarks serve`: the local model server against its ceiling and its peers.

The load generator is wrk (native, Debian's package; installed with apt-get when missing and this
runs as root, else the benchmark prints one skip row with `met: null` and the reason). A Lua
script makes every request the same v2 JSON POST of one row. Side by side in one run, serving the
same Keras model, each on 127.0.0.1 with its own process:

- echo: a bare uvicorn ASGI app that reads the body and sends it back (the ceiling);
- Sluice: `python -m stages.serve`, and the same with `--no-guard` (no skew guard, statistics or
  request metrics: what they cost);
- MLServer: Seldon MLServer (MLSERVER_VERSION, its own venv .tools/mlserver-venv, created on the
  first full run) with a minimal custom runtime (benchmarks/_mlserver_runtime.py);
- KServe: a plain `kserve.Model` subclass served by `kserve.ModelServer` (benchmarks/_serve_peers.py).

Both peers call the model the way Sluice does (stages/predictor.Predictor), so the figures compare
the serving paths. Throughput and latency: 4 keep-alive connections, a fixed duration per round,
the servers interleaved round by round, the best of the rounds for each (a round on a shared
machine is easily disturbed by other processes, which says nothing about the server). Single-
request latency: one connection, vs the model called in-process. `--quick`: one short round, and
MLServer only if its venv already exists (a skip row otherwise).
"""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._mlserver import MLSERVER_VERSION, ensure_mlserver, mlserver_command
from benchmarks._serve_processes import environment, exit_on_sigterm, free_port, spawn, stop
from benchmarks._wrk import WRK_MARK, WRK_SCRIPT, Load, ensure_wrk, wrk_round
from benchmarks.common import percentile, row
from stages.serving_protocol import INPUT_NAME

MODEL = "bench"
INFER_PATH = f"/v2/models/{MODEL}/infer"
# the input's name is the server's (stages/serving_protocol.INPUT_NAME); the peers take any name
BODY = json.dumps(
    {"inputs": [{"name": INPUT_NAME, "shape": [1, 2], "datatype": "FP32", "data": [12.5, 30.25]}]}
).encode()
CONNECTIONS = 4


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: a bare ASGI endpoint that reads the body and sends it back."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Server:
    label: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    failure: str = ""  # why it is not measured (a peer that could not be installed or started)
    rounds: list[Load] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return max(r.rps for r in self.rounds)

    @property
    def p99(self) -> float:
        return min(r.p99 for r in self.rounds)


def _train_model(work: Path) -> Path:
    for module, args in (
        ("prepare", ["--generator", "sum-of-two", "--samples", "4000", "--artifacts-dir", str(work)]),
        ("train_keras", ["--dataset", str(work / "dataset"), "--epochs", "3", "--artifacts-dir", str(work)]),
    ):
        subprocess.run(
            [sys.executable, "-m", f"stages.{module}", *args],
            check=True,
            capture_output=True,
            env=environment(),
        )
    return work / "model"


def _post(port: int, path: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", BODY, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait_answering(server: Server, path: str, deadline: float, log: Path) -> None:
    """Wait until the server answers the benchmark's request with 200; else set `failure`."""
    last = ""
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            status = _post(server.port, path)
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            last = f"HTTP {status}"
            if status != 503:  # it answers, and not with 200: waiting will not help
                break
        time.sleep(0.3)
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
    server.failure = f"{server.label} did not answer the request ({last or 'exited'}): {tail[-300:]}"


def skip_row(metric: str, unit: str, goal: str, reason: str) -> dict[str, Any]:
    return {**row("serve", metric, 0.0, unit, f"skipped: {reason}", 0.0, goal, False, ratio=0.0), "met": None}


def _direct_p50(model_dir: Path, requests: int) -> float:
    """The model called in-process the way the server calls it (ms)."""
    import numpy as np

    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    from stages.model_dir import load_model_dir
    from stages.predictor import Predictor

    _, model = load_model_dir(model_dir)
    predict = Predictor(model, 2)
    predict.warm_up()
    x = np.array([[12.5, 30.25]], dtype=np.float32)
    for _ in range(50):
        predict(x)
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        predict(x)
        samples.append(time.perf_counter() - start)
    gc.collect()
    return percentile(samples, 50) * 1000


def run(quick: bool) -> list[dict[str, Any]]:
    wrk, why = ensure_wrk()
    if not wrk:
        return [
            skip_row(
                "throughput", "requests/s", f">= 0.2x the echo endpoint (wrk, {CONNECTIONS} connections)", why
            )
        ]
    rounds = 1 if quick else 3
    seconds = 1.0 if quick else 5.0
    mlserver, mlserver_why = ensure_mlserver(quick)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-serve-") as temporary:
        work = Path(temporary)
        model_dir = _train_model(work)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % (BODY.decode(), WRK_MARK))
        direct_p50 = _direct_p50(model_dir, 300 if quick else 2000)
        serve = [sys.executable, "-m", "stages.serve", "--model-dir", str(model_dir), "--name", MODEL]
        servers = {
            "echo": Server("echo", free_port()),
            "sluice": Server("Sluice", free_port()),
            "sluice-no-guard": Server("Sluice --no-guard", free_port()),
            "mlserver": Server(f"MLServer {MLSERVER_VERSION}", free_port(), failure=mlserver_why),
            "kserve": Server("kserve.Model", free_port()),
        }
        commands = {
            "echo": [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.serve:echo_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(servers["echo"].port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            "sluice": [*serve, "--port", str(servers["sluice"].port), "--stats-file", str(work / "s.json")],
            "sluice-no-guard": [*serve, "--port", str(servers["sluice-no-guard"].port), "--no-guard"],
            "kserve": [
                sys.executable,
                "-m",
                "benchmarks._serve_peers",
                "kserve",
                "--model-dir",
                str(model_dir),
                "--name",
                MODEL,
                "--port",
                str(servers["kserve"].port),
            ],
        }
        if mlserver is not None:
            commands["mlserver"] = mlserver_command(
                mlserver, work, model_dir, servers["mlserver"].port, MODEL
            )
        # a SIGTERM (timeout, CI) still stops the servers this run started
        previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
        try:
            for key, command in commands.items():  # start them all, then wait: they load in parallel
                servers[key].process = spawn(command, work, work / f"{key}.log")
            deadline = time.monotonic() + 180
            for key, server in servers.items():
                if not server.failure:
                    _wait_answering(server, INFER_PATH, deadline, work / f"{key}.log")
            for key in ("echo", "sluice", "sluice-no-guard"):
                if servers[key].failure:
                    raise RuntimeError(servers[key].failure)
            measured = [s for s in servers.values() if not s.failure]
            for server in measured:  # warm up every path once
                wrk_round(wrk, script, server.port, INFER_PATH, CONNECTIONS, 1)
            single: list[Load] = []
            for _ in range(rounds):  # interleaved: each round visits every server
                for server in measured:
                    try:
                        server.rounds.append(
                            wrk_round(wrk, script, server.port, INFER_PATH, CONNECTIONS, seconds)
                        )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        if server in (servers["echo"], servers["sluice"], servers["sluice-no-guard"]):
                            raise
                        server.failure = str(exc)
                measured = [s for s in measured if not s.failure]
                single.append(wrk_round(wrk, script, servers["sluice"].port, INFER_PATH, 1, seconds))
        finally:
            for server in servers.values():
                stop(server.process)
            signal.signal(signal.SIGTERM, previous)
    return _rows(servers, single, direct_p50)


def _rows(servers: dict[str, Server], single: list[Load], direct_p50: float) -> list[dict[str, Any]]:
    sluice, echo, bare = servers["sluice"], servers["echo"], servers["sluice-no-guard"]
    p50 = min(r.p50 for r in single)
    p99 = min(r.p99 for r in single)
    rows = [
        row(
            "serve",
            "v2_request_p50",
            p50,
            "ms",
            "direct model call p50 (the server's Predictor)",
            direct_p50,
            "p50 <= direct + 3 ms (wrk, 1 connection)",
            p50 <= direct_p50 + 3,
        ),
        row(
            "serve",
            "v2_request_p99",
            p99,
            "ms",
            "v2 request p50",
            p50,
            "p99 <= 3x p50 (1 connection)",
            p99 <= 3 * p50,
        ),
        row(
            "serve",
            "throughput",
            sluice.rps,
            "requests/s",
            f"bare uvicorn echo endpoint (wrk, {CONNECTIONS} connections)",
            echo.rps,
            ">= 0.2x the echo endpoint",
            sluice.rps >= 0.2 * echo.rps,
        ),
        row(
            "serve",
            "p99_4_connections",
            sluice.p99,
            "ms",
            f"echo endpoint p99 ({CONNECTIONS} connections)",
            echo.p99,
            "p99 <= 2 ms",
            sluice.p99 <= 2.0,
        ),
        row(
            "serve",
            "guard_cost",
            sluice.rps,
            "requests/s",
            "the same server with --no-guard (no skew guard, statistics or metrics)",
            bare.rps,
            ">= 0.95x: the guard and metrics cost <= 5 % of throughput",
            sluice.rps >= 0.95 * bare.rps,
        ),
    ]
    for key, slug in (("mlserver", "mlserver"), ("kserve", "kserve_model")):
        peer = servers[key]
        if peer.failure or not peer.rounds:
            reason = peer.failure or "not measured"
            rows.append(skip_row(f"throughput_vs_{slug}", "requests/s", f"ahead of {peer.label}", reason))
            rows.append(skip_row(f"p99_vs_{slug}", "ms", f"p99 below {peer.label}'s", reason))
            continue
        rows.append(
            row(
                "serve",
                f"throughput_vs_{slug}",
                sluice.rps,
                "requests/s",
                f"{peer.label}, same model and body ({CONNECTIONS} connections)",
                peer.rps,
                f"ahead of {peer.label} (> 1x)",
                sluice.rps > peer.rps,
            )
        )
        rows.append(
            row(
                "serve",
                f"p99_vs_{slug}",
                sluice.p99,
                "ms",
                f"{peer.label} p99 ({CONNECTIONS} connections)",
                peer.p99,
                f"p99 below {peer.label}'s (< 1x)",
                sluice.p99 < peer.p99,
            )
        )
    return rows
