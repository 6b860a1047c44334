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

import contextlib
import gc
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import percentile, row
from stages.serving_protocol import INPUT_NAME

PROJECT = Path(__file__).resolve().parents[1]
MODEL = "bench"
INFER_PATH = f"/v2/models/{MODEL}/infer"
# the input's name is the server's (stages/serving_protocol.INPUT_NAME); the peers take any name
BODY = json.dumps(
    {"inputs": [{"name": INPUT_NAME, "shape": [1, 2], "datatype": "FP32", "data": [12.5, 30.25]}]}
).encode()
CONNECTIONS = 4
MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = PROJECT / ".tools" / "mlserver-venv"
WRK_MARK = "SLUICE-WRK"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%s %%d %%d %%d %%d %%.1f %%.1f\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


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
class Load:
    """One wrk round: requests/s and latency percentiles (ms)."""

    rps: float
    p50: float
    p99: float


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _train_model(work: Path) -> Path:
    for module, args in (
        ("prepare", ["--generator", "sum-of-two", "--samples", "4000", "--artifacts-dir", str(work)]),
        ("train_keras", ["--dataset", str(work / "dataset"), "--epochs", "3", "--artifacts-dir", str(work)]),
    ):
        subprocess.run(
            [sys.executable, "-m", f"stages.{module}", *args],
            check=True,
            capture_output=True,
            env=_environment(),
        )
    return work / "model"


def ensure_wrk() -> tuple[str, str]:
    """(path of wrk, "") or ("", why there is none)."""
    found = shutil.which("wrk")
    if found:
        return found, ""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "", "wrk is not installed (Debian: apt-get install wrk, as root)"
    for commands in ([[apt, "install", "-y", "wrk"]], [[apt, "update"], [apt, "install", "-y", "wrk"]]):
        for command in commands:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    command,
                    capture_output=True,
                    timeout=600,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
        found = shutil.which("wrk")
        if found:
            return found, ""
    return "", "wrk is not installed and apt-get install -y wrk failed"


def ensure_mlserver(quick: bool) -> tuple[Path | None, str]:
    """(the venv's mlserver command, "") or (None, why not). A full run creates the venv."""
    command = MLSERVER_VENV / "bin" / "mlserver"
    if command.exists():
        return command, ""
    if quick:
        return None, f"MLServer is not installed in {MLSERVER_VENV} (a full run installs it)"
    try:
        tensorflow = "tensorflow-cpu==" + importlib.metadata.version("tensorflow-cpu")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = "tensorflow==" + importlib.metadata.version("tensorflow")
    python = MLSERVER_VENV / "bin" / "python"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"mlserver=={MLSERVER_VERSION}", tensorflow],
            check=True,
            capture_output=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not install mlserver=={MLSERVER_VERSION} in {MLSERVER_VENV}: {exc}"
    return (command, "") if command.exists() else (None, f"no {command} after installing MLServer")


def _spawn(command: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=str(cwd),
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped as a group (MLServer has worker processes)
        )


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


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


def _mlserver_command(mlserver: Path, work: Path, model_dir: Path, port: int) -> list[str]:
    folder = work / "mlserver"
    (folder / MODEL).mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": _free_port(),
        "metrics_port": _free_port(),
        "parallel_workers": 0,  # the model in the server process, as Sluice and KServe have it
        "debug": False,
    }
    model = {
        "name": MODEL,
        "implementation": "benchmarks._mlserver_runtime.KerasRuntime",
        "parameters": {"uri": str(model_dir)},
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / MODEL / "model-settings.json").write_text(json.dumps(model))
    return [str(mlserver), "start", str(folder)]


def wrk_round(wrk: str, script: Path, port: int, path: str, connections: int, seconds: float) -> Load:
    done = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    requests, micros, bad_status, socket_errors, p50, p99 = line.split()[1:]
    if int(bad_status) or int(socket_errors):
        raise RuntimeError(f"port {port}: {bad_status} non-2xx answers, {socket_errors} socket errors")
    return Load(int(requests) / (int(micros) / 1e6), float(p50) / 1000, float(p99) / 1000)


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
            "echo": Server("echo", _free_port()),
            "sluice": Server("Sluice", _free_port()),
            "sluice-no-guard": Server("Sluice --no-guard", _free_port()),
            "mlserver": Server(f"MLServer {MLSERVER_VERSION}", _free_port(), failure=mlserver_why),
            "kserve": Server("kserve.Model", _free_port()),
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
            commands["mlserver"] = _mlserver_command(mlserver, work, model_dir, servers["mlserver"].port)
        # a SIGTERM (timeout, CI) still stops the servers this run started
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            for key, command in commands.items():  # start them all, then wait: they load in parallel
                servers[key].process = _spawn(command, work, work / f"{key}.log")
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
                _stop(server.process)
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
