"""Local model endpoints: start, list and stop KServe model servers on 127.0.0.1.

An endpoint is a detached `python -m stages.serve` process (its own session, so it outlives the
step and `sluice run`) registered as `$SLUICE_HOME/endpoints/<name>.json` with `name`, `url`,
`pid`, `port`, `model_dir`, `started_at` (plus `log` and `stats`). `sluice endpoints` lists them,
with each one's drift state (`Endpoint.drift_state`, read from the stats file's `guard` section),
and `sluice endpoints stop NAME` stops one; both use this module. Cheap to import.

Under `sluice run --containers` the server is a detached container instead (`serve_container`,
run by the executor as `python -m stages.endpoints serve-container ...`): the stages image, read-only,
the deploy step's uid, no capabilities, the model folder mounted read-only, port 8080 published on
127.0.0.1 only. Its record adds `container`, `engine` and `containers_conf` (the engine command and
the podman configuration it needs), which `alive` and `stop_endpoint` use instead of the pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.settings import sluice_home

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SERVER_MODULE = "stages.serve"


class EndpointError(Exception):
    """Starting or stopping an endpoint failed; the message says why."""


@dataclass
class Endpoint:
    name: str
    url: str
    pid: int
    port: int
    model_dir: str
    started_at: str
    log: str = ""
    stats: str = ""
    container: str = ""  # a model server in a container: its name, engine and podman configuration
    engine: str = ""
    containers_conf: str = ""
    registered: str = ""  # the MLflow registry version it serves, models:/NAME/VERSION (docs/mlflow.md)

    @property
    def alive(self) -> bool:
        if self.container:
            done = _engine(self, "inspect", "--format", "{{.State.Running}}", self.container)
            return done.returncode == 0 and done.stdout.strip() == "true"
        return _is_our_server(self.pid)

    def drift_state(self) -> str:
        """The skew guard's verdict on the served traffic, from the `guard` section of the server's
        statistics file (written about once a second): stable, drifting, drifted, or unknown (no
        file yet, no rows served, or an older server without the guard)."""
        if not self.stats:
            return "unknown"
        try:
            document = json.loads(Path(self.stats).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "unknown"
        guard = document.get("guard") if isinstance(document, dict) else None
        state = guard.get("state") if isinstance(guard, dict) else None
        return state if state in DRIFT_STATES else "unknown"


DRIFT_STATES = ("stable", "drifting", "drifted", "unknown")


def _engine(endpoint: Endpoint, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if endpoint.containers_conf:
        env["CONTAINERS_CONF"] = endpoint.containers_conf
    try:
        return subprocess.run(
            [endpoint.engine, *args], capture_output=True, text=True, env=env, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess([endpoint.engine, *args], 1, "", str(exc))


def endpoints_dir() -> Path:
    return sluice_home() / "endpoints"


def infer_url(port: int, name: str) -> str:
    return f"http://127.0.0.1:{port}/v2/models/{name}/infer"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise EndpointError(f"endpoint name {name!r} must be lower-case letters, digits and '-' (at most 63)")
    return name


def list_endpoints() -> list[Endpoint]:
    """Registered endpoints, sorted by name (stale ones included; see `.alive`)."""
    found = []
    directory = endpoints_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        endpoint = _read(path)
        if endpoint is not None:
            found.append(endpoint)
    return found


def get_endpoint(name: str) -> Endpoint | None:
    return _read(endpoints_dir() / f"{check_name(name)}.json")


def _read(path: Path) -> Endpoint | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Endpoint(**{k: data[k] for k in Endpoint.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def stop_endpoint(name: str, timeout: float = 10.0) -> bool:
    """Stop the named endpoint's process group and forget it; False if no such endpoint."""
    endpoint = get_endpoint(name)
    if endpoint is None:
        return False
    if endpoint.container:
        _engine(endpoint, "rm", "--force", "--time", str(int(timeout)), endpoint.container)
    elif _is_our_server(endpoint.pid):
        _terminate_group(endpoint.pid, timeout)
    (endpoints_dir() / f"{name}.json").unlink(missing_ok=True)
    return True


def start_endpoint(name: str, model_dir: Path, timeout: float = 120.0, registered: str = "") -> Endpoint:
    """Start a model server for `model_dir`, wait until the model is ready, register it."""
    check_name(name)
    if not (model_dir / "model.json").is_file():
        raise EndpointError(f"{model_dir} is not a model directory (no model.json)")
    directory = endpoints_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stop_endpoint(name)  # redeploying a name replaces its server
    log = directory / f"{name}.log"
    stats = directory / f"{name}.stats.json"
    stats.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    for _attempt in range(3):  # another process may take the free port between probe and bind
        port = _free_port()
        command = [sys.executable, "-m", SERVER_MODULE, "--model-dir", str(model_dir), "--name", name]
        command += ["--port", str(port), "--stats-file", str(stats)]
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: outlives the step, stops as a whole
                env=_server_environment(),
                cwd=str(directory),
            )
        url = infer_url(port, name)
        if _wait_ready(process, url.removesuffix("/infer") + "/ready", deadline):
            endpoint = Endpoint(
                name=name,
                url=url,
                pid=process.pid,
                port=port,
                model_dir=str(model_dir),
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                log=str(log),
                stats=str(stats),
                registered=registered,
            )
            _register(endpoint)
            return endpoint
        if process.poll() is None:
            _terminate_group(process.pid, 5.0)
            raise EndpointError(f"model server for {name!r} was not ready within {timeout:g}s; see {log}")
        process.wait()
        if "address already in use" not in _tail(log).lower():
            raise EndpointError(
                f"model server for {name!r} exited with status {process.returncode}: {_tail(log)}"
            )
    raise EndpointError(f"model server for {name!r} could not bind a port; see {log}")


CONTAINER_PORT = 8080


def serve_container(
    name: str, model_dir: Path, image: str, engine: str, user: str, timeout: float = 120.0
) -> Endpoint:
    """Start the model server for `model_dir` as a detached container of `image`, published on
    127.0.0.1, wait until the model is ready, register it (with `container`)."""
    check_name(name)
    if not (model_dir / "model.json").is_file():
        raise EndpointError(f"{model_dir} is not a model directory (no model.json)")
    directory = endpoints_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stop_endpoint(name)
    log = directory / f"{name}.log"
    state = directory / f"{name}.serve"  # the server's only writable folder: its statistics
    state.mkdir(exist_ok=True)
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid:
        os.chown(state, int(uid), int(gid or uid))
    container = f"sluice-endpoint-{name}"
    record = Endpoint(name, "", 0, 0, str(model_dir), "", str(log), str(state / "stats.json"), container)
    record.engine, record.containers_conf = engine, os.environ.get("CONTAINERS_CONF", "")
    _engine(record, "rm", "--force", "--time", "0", container)  # a leftover of an earlier server
    deadline = time.monotonic() + timeout
    for _attempt in range(3):  # another process may take the free port between probe and start
        port = _free_port()
        argv = ["run", "--detach", "--name", container, "--pull", "never", "--read-only"]
        argv += ["--read-only-tmpfs=false"] if Path(engine).name == "podman" else []
        argv += ["--user", user] if user else []
        argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        argv += ["--tmpfs", "/tmp:rw,mode=1777", "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}"]
        argv += ["-v", f"{model_dir}:/model:ro", "-v", f"{state}:/var/run/sluice"]
        # the server checks the Host header against its own port (8080): name the published one
        published = ",".join(f"{host}:{port}" for host in ("127.0.0.1", "localhost", "[::1]"))
        argv += ["-e", f"SLUICE_SERVE_ALLOWED_HOSTS={published}"]
        argv += ["--entrypoint", "python", image, "-m", SERVER_MODULE, "--model-dir", "/model"]
        argv += ["--name", name, "--host", "0.0.0.0", "--port", str(CONTAINER_PORT)]
        argv += ["--stats-file", "/var/run/sluice/stats.json"]
        started = _engine(record, *argv)
        if started.returncode != 0:
            raise EndpointError(f"{engine} could not start the model server: {started.stderr.strip()}")
        url = infer_url(port, name)
        ready = _wait_container_ready(record, url.removesuffix("/infer") + "/ready", deadline)
        log.write_text(_engine(record, "logs", container).stdout, encoding="utf-8")
        if ready:
            record.url, record.port = url, port
            record.started_at = datetime.now(UTC).isoformat(timespec="seconds")
            _register(record)
            return record
        _engine(record, "rm", "--force", "--time", "0", container)
        if "address already in use" not in _tail(log).lower():
            raise EndpointError(f"model server for {name!r} was not ready within {timeout:g}s: {_tail(log)}")
    raise EndpointError(f"model server for {name!r} could not bind a port; see {log}")


def _wait_container_ready(record: Endpoint, ready_url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            if not record.alive:
                return False
        time.sleep(0.2)
    return False


def _register(endpoint: Endpoint) -> None:
    directory = endpoints_dir()
    temporary = directory / f".{endpoint.name}.json.tmp"
    temporary.write_text(json.dumps(asdict(endpoint), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, directory / f"{endpoint.name}.json")


def main(argv: list[str] | None = None) -> None:
    """`python -m stages.endpoints serve-container ...`: the executor's way to start a container
    endpoint; prints the endpoint's record as JSON."""
    parser = argparse.ArgumentParser(prog="python -m stages.endpoints")
    parser.add_argument("command", choices=["serve-container"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--user", default="")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        endpoint = serve_container(
            args.name, args.model_dir, args.image, args.engine, args.user, args.timeout
        )
    except EndpointError as exc:
        print(f"sluice endpoints: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(asdict(endpoint)))


def _server_environment() -> dict[str, str]:
    env = dict(os.environ)
    project = str(Path(__file__).resolve().parents[1])  # so `stages` imports from any cwd
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], ready_url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _is_our_server(pid: int) -> bool:
    """True if `pid` is alive and is a Sluice model server (never signal a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return _pid_alive(pid) if not Path("/proc").is_dir() else False
    if status.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie has already exited
        _reap(pid)
        return False
    return SERVER_MODULE.encode() in cmdline


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # only succeeds if we started it; otherwise init reaps


def _terminate_group(pid: int, timeout: float) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return
        end = time.monotonic() + wait
        while time.monotonic() < end:
            _reap(pid)
            if not _is_our_server(pid):
                return
            time.sleep(0.05)


if __name__ == "__main__":
    main()
