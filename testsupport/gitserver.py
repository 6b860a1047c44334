"""Real Git repositories and real Git servers on 127.0.0.1 for the Codeset tests.

- `Repo`: a working repository made with `git init`; `commit({path: text})` writes and commits.
- `SmartHTTP`: git's own `git http-backend` (CGI) behind a small threaded HTTP server, with optional
  basic auth, an injectable delay (a slow server) and a count of requests per kind.
- `GitDaemon`: `git daemon --export-all --base-path=...` on a free port.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path | str | None = None) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class Repo:
    """A non-bare repository served as `<root>/<name>.git` (the server's export path)."""

    def __init__(self, root: Path, name: str = "project", branch: str = "main"):
        self.root = root
        self.name = name
        self.path = root / f"{name}.git"
        self.branch = branch
        self.path.mkdir(parents=True)
        git("init", "-q", "-b", branch, cwd=self.path)
        git("config", "http.receivepack", "false", cwd=self.path)

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        """Write (or, with None, delete) files and commit; returns the new commit SHA."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                git("rm", "-q", "-r", "--", rel, cwd=self.path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            git("add", "--", rel, cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return self.head()

    def symlink(self, rel: str, target: str) -> str:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
        git("add", "--", rel, cwd=self.path)
        git("commit", "-q", "-m", f"link {rel}", cwd=self.path)
        return self.head()

    def tag(self, name: str, annotated: bool = True) -> None:
        if annotated:
            git("tag", "-a", "-m", name, name, cwd=self.path)
        else:
            git("tag", name, cwd=self.path)

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmartHTTP:
    """`git http-backend` over HTTP on 127.0.0.1, optionally behind basic auth and a delay."""

    def __init__(self, root: Path, *, username: str | None = None, password: str | None = None):
        self.root = root
        self.username = username
        self.password = password
        self.delay = 0.0
        self.requests: dict[str, int] = {"ls-refs": 0, "info-refs": 0, "upload-pack": 0, "denied": 0}
        self.by_repo: dict[tuple[str, str], int] = {}  # (repository name, kind) -> requests
        self.authorization_seen: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, repo: Repo) -> str:
        return f"http://127.0.0.1:{self.port}/{repo.name}.git"

    def start(self) -> SmartHTTP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, kind: str, repo: str = "") -> None:
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.by_repo[(repo, kind)] = self.by_repo.get((repo, kind), 0) + 1

    def repo_requests(self, repo: Repo, kind: str) -> int:
        with self._lock:
            return self.by_repo.get((f"{repo.name}.git", kind), 0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    body = self.rfile.read(length)
                self._serve(body)

            def _read_chunked(self) -> bytes:
                data = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()

            def _serve(self, body: bytes) -> None:
                if server.delay:
                    time.sleep(server.delay)
                if server.username is not None:
                    header = self.headers.get("Authorization") or ""
                    with server._lock:
                        server.authorization_seen.append(header)
                    expected = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
                    if header != f"Basic {expected}":
                        server.count("denied")
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="git"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                path, _, query = self.path.partition("?")
                repo_name = path.strip("/").split("/")[0]
                if path.endswith("/info/refs"):
                    server.count("info-refs", repo_name)
                elif path.endswith("/git-upload-pack"):
                    server.count("ls-refs" if b"command=ls-refs" in body[:64] else "upload-pack", repo_name)
                env = {
                    "PATH": os.environ.get("PATH", os.defpath),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": os.devnull,
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": "127.0.0.1",
                    "REMOTE_USER": server.username or "",
                }
                if self.headers.get("Git-Protocol"):
                    env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


class GitDaemon:
    """`git daemon` serving every repository under `root` at git://127.0.0.1:PORT/NAME.git."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, repo: Repo) -> str:
        return f"git://127.0.0.1:{self.port}/{repo.name}.git"

    def start(self) -> GitDaemon:
        self._process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                "--export-all",
                f"--base-path={self.root}",
                str(self.root),
            ],
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


class LocalListener:
    """A TCP server on 127.0.0.1, at a free `port`, that hands every connection to `handle` (on
    its own thread) until `stop`. As it is, it closes them: a port that is open and speaks nothing."""

    def __init__(self, backlog: int = 64) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def handle(self, conn: socket.socket) -> None:
        conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.handle(conn)

    def stop(self) -> None:
        self._sock.close()


class HangingServer(LocalListener):
    """Accepts connections and never answers: a Git server that is up but stuck."""

    def __init__(self) -> None:
        self._held: list[socket.socket] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        self._held.append(conn)

    def stop(self) -> None:
        super().stop()
        for conn in self._held:
            conn.close()
