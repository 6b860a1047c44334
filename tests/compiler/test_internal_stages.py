"""The internal stage programs the compiler emits: clone (real git), gate and summary."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.compiler.conftest import PROJECT

GIT_ID = ["-c", "user.email=test@example.com", "-c", "user.name=Test"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def stage(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "SLUICE_ALLOW_LOCAL_GIT"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", f"stages.{module}", *args],
        cwd=PROJECT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path) -> tuple[Path, list[str]]:
    """A repository with three commits; returns it and the commit SHAs, oldest first."""
    path = tmp_path / "origin"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    shas = []
    for index in range(3):
        (path / "data.csv").write_text(f"x,y\n{index},{index}\n")
        git("add", "data.csv", cwd=path)
        git("commit", "-q", "-m", f"commit {index}", cwd=path)
        shas.append(git("rev-parse", "HEAD", cwd=path))
    return path, shas


LOCAL = {"SLUICE_ALLOW_LOCAL_GIT": "1"}


def test_clone_checks_out_the_pinned_commit_shallowly(repo, tmp_path):
    origin, shas = repo
    dest, result = tmp_path / "ws" / "src", tmp_path / "commit"
    done = stage(
        "clone",
        "--url",
        f"file://{origin}",
        "--revision",
        shas[1],
        "--dest",
        str(dest),
        "--result",
        f"commit={result}",
        env=LOCAL,
    )
    assert done.returncode == 0, done.stderr
    assert result.read_text() == shas[1]
    assert (dest / "data.csv").read_text() == "x,y\n1,1\n"
    assert git("rev-list", "--count", "HEAD", cwd=dest) == "1"  # shallow
    # a retried attempt starts from a clean folder
    (dest / "stale.txt").write_text("left over")
    done = stage(
        "clone",
        "--url",
        f"file://{origin}",
        "--revision",
        "main",
        "--dest",
        str(dest),
        "--result",
        f"commit={result}",
        env=LOCAL,
    )
    assert done.returncode == 0, done.stderr
    assert result.read_text() == shas[2] and not (dest / "stale.txt").exists()


def test_clone_does_not_fetch_submodules(repo, tmp_path):
    origin, _ = repo
    outer = tmp_path / "outer"
    outer.mkdir()
    git("init", "-q", "-b", "main", cwd=outer)
    subprocess.run(
        [
            "git",
            *GIT_ID,
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            f"file://{origin}",
            "sub",
        ],
        cwd=outer,
        check=True,
        capture_output=True,
    )
    git("commit", "-q", "-m", "with submodule", cwd=outer)
    dest = tmp_path / "checkout"
    done = stage(
        "clone",
        "--url",
        f"file://{outer}",
        "--revision",
        git("rev-parse", "HEAD", cwd=outer),
        "--dest",
        str(dest),
        env=LOCAL,
    )
    assert done.returncode == 0, done.stderr
    assert (dest / ".gitmodules").exists()
    assert list((dest / "sub").iterdir()) == []


@pytest.mark.parametrize(
    "url,revision,message",
    [
        ("ext::sh%20-c%20touch%20/tmp/sluice-pwned", "main", "remote helpers"),
        ("https://github.com/o/r.git", "--upload-pack=touch /tmp/sluice-pwned", "must not start with '-'"),
        ("file:///tmp", "main", "SLUICE_ALLOW_LOCAL_GIT"),
    ],
)
def test_clone_refuses_unsafe_input_before_running_git(url, revision, message, tmp_path):
    done = stage("clone", "--url", url, "--revision", revision, "--dest", str(tmp_path / "d"))
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "d").exists()
    assert not Path("/tmp/sluice-pwned").exists()


def test_clone_reports_a_missing_commit(repo, tmp_path):
    origin, _ = repo
    done = stage(
        "clone", "--url", f"file://{origin}", "--revision", "f" * 40, "--dest", str(tmp_path / "d"), env=LOCAL
    )
    assert done.returncode == 1
    assert "git " in done.stderr and "Traceback" not in done.stderr


class _SmartHTTP(BaseHTTPRequestHandler):
    """git's smart HTTP through `git http-backend`, behind HTTP basic authentication."""

    root: Path
    expected: str
    seen_paths: list[str]

    def _serve(self) -> None:
        self.seen_paths.append(self.path)
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "alice",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line]
        status = next((int(v.strip().split()[0]) for k, v in headers if k.lower() == b"status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() != b"status":
                self.send_header(key.decode(), value.strip().decode())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, *args: object) -> None:
        pass


def test_clone_uses_credentials_from_a_secret_folder_only(repo, tmp_path):
    origin, shas = repo
    bare = tmp_path / "srv" / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(origin), str(bare)], check=True)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "username").write_text("alice")
    (secret / "password").write_text("correct-horse-battery")
    handler = type(
        "Handler",
        (_SmartHTTP,),
        {
            "root": bare.parent,
            "expected": "Basic " + base64.b64encode(b"alice:correct-horse-battery").decode(),
            "seen_paths": [],
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/repo.git"
        denied = stage(
            "clone", "--url", url, "--revision", shas[0], "--dest", str(tmp_path / "no"), env=LOCAL
        )
        assert denied.returncode == 1  # no prompt, no hang: fails at once without credentials
        dest, result = tmp_path / "yes", tmp_path / "commit"
        done = stage(
            "clone",
            "--url",
            url,
            "--revision",
            shas[0],
            "--dest",
            str(dest),
            "--credentials-dir",
            str(secret),
            "--result",
            f"commit={result}",
            env=LOCAL,
        )
        assert done.returncode == 0, done.stderr
        assert result.read_text() == shas[0]
        assert "correct-horse-battery" not in done.stdout + done.stderr
        config = (dest / ".git" / "config").read_text()
        assert "correct-horse-battery" not in config and "alice" not in config
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "left,op,right,expected",
    [
        ("0.42", "<=", "1.0", "true"),
        ("2", "<", "1", "false"),
        ("1e-3", ">", "0", "true"),
        ("nan", ">=", "0", "false"),
        ("3", "==", "3.0", "true"),
    ],
)
def test_gate_writes_pass(left, op, right, expected, tmp_path):
    result = tmp_path / "pass"
    done = stage("gate", "--left", left, "--op", op, "--right", right, "--result", f"pass={result}")
    assert done.returncode == 0, done.stderr
    assert result.read_text() == expected


def test_gate_refuses_a_non_number(tmp_path):
    done = stage("gate", "--left", "", "--op", "<=", "--right", "1", "--result", f"pass={tmp_path / 'p'}")
    assert done.returncode == 1 and "not a number" in done.stderr
    done = stage("gate", "--left", "1", "--op", "=~", "--right", "1")
    assert done.returncode == 2


def test_summary_records_every_task(tmp_path):
    result = tmp_path / "status"
    done = stage(
        "summary",
        "--workflow",
        "w",
        "--run",
        "w-1",
        "--status",
        "Completed",
        "--task",
        "prepare=Succeeded",
        "--task",
        "deploy=None",
        "--artifacts-dir",
        str(tmp_path / "summary"),
        "--result",
        f"status={result}",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert summary == {
        "workflow": "w",
        "run": "w-1",
        "status": "Completed",
        "tasks": {"prepare": "Succeeded", "deploy": "None"},
    }
    assert result.read_text() == "Completed"
    assert "deploy: None" in done.stdout


@pytest.mark.parametrize("module", ["clone", "gate", "summary"])
def test_stage_help(module):
    done = stage(module, "--help")
    assert done.returncode == 0 and "--result" in done.stdout
