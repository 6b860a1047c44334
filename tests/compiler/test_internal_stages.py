"""The internal stage programs the compiler emits: clone (real git), gate and summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compiler.conftest import PROJECT
from testsupport.gitserver import Repo, SmartHTTP, git


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


LOCAL = {"SLUICE_ALLOW_LOCAL_GIT": "1"}


def clone(url: str, revision: str, dest: Path, *extra: str, result: Path | None = None):
    """`stages.clone` as the compiled clone task runs it, local Git URLs allowed."""
    out = ["--result", f"commit={result}"] if result else []
    return stage("clone", "--url", url, "--revision", revision, "--dest", str(dest), *extra, *out, env=LOCAL)


@pytest.fixture
def repo(tmp_path) -> tuple[Path, list[str]]:
    """A repository with three commits; returns it and the commit SHAs, oldest first."""
    origin = Repo(tmp_path, "origin")
    shas = [origin.commit({"data.csv": f"x,y\n{index},{index}\n"}, f"commit {index}") for index in range(3)]
    return origin.path, shas


def test_clone_checks_out_the_pinned_commit_shallowly(repo, tmp_path):
    origin, shas = repo
    dest, result = tmp_path / "ws" / "src", tmp_path / "commit"
    done = clone(f"file://{origin}", shas[1], dest, result=result)
    assert done.returncode == 0, done.stderr
    assert result.read_text() == shas[1]
    assert (dest / "data.csv").read_text() == "x,y\n1,1\n"
    assert git("rev-list", "--count", "HEAD", cwd=dest) == "1"  # shallow
    # a retried attempt starts from a clean folder
    (dest / "stale.txt").write_text("left over")
    done = clone(f"file://{origin}", "main", dest, result=result)
    assert done.returncode == 0, done.stderr
    assert result.read_text() == shas[2] and not (dest / "stale.txt").exists()


def test_clone_does_not_fetch_submodules(repo, tmp_path):
    origin, _ = repo
    outer = Repo(tmp_path, "outer")
    add_submodule = ["-c", "protocol.file.allow=always", "submodule", "add", "-q"]
    git(*add_submodule, f"file://{origin}", "sub", cwd=outer.path)
    dest = tmp_path / "checkout"
    done = clone(f"file://{outer.path}", outer.commit({}, "with submodule"), dest)
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
    done = clone(f"file://{origin}", "f" * 40, tmp_path / "d")
    assert done.returncode == 1
    assert "git " in done.stderr and "Traceback" not in done.stderr


def test_clone_uses_credentials_from_a_secret_folder_only(repo, tmp_path):
    origin, shas = repo
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "username").write_text("alice")
    (secret / "password").write_text("correct-horse-battery")
    # git's smart HTTP (`git http-backend`) behind HTTP basic authentication
    server = SmartHTTP(origin.parent, username="alice", password="correct-horse-battery").start()
    try:
        url = f"http://127.0.0.1:{server.port}/{origin.name}"
        denied = clone(url, shas[0], tmp_path / "no")
        assert denied.returncode == 1  # no prompt, no hang: fails at once without credentials
        dest, result = tmp_path / "yes", tmp_path / "commit"
        done = clone(url, shas[0], dest, "--credentials-dir", str(secret), result=result)
        assert done.returncode == 0, done.stderr
        assert result.read_text() == shas[0]
        assert "correct-horse-battery" not in done.stdout + done.stderr
        config = (dest / ".git" / "config").read_text()
        assert "correct-horse-battery" not in config and "alice" not in config
    finally:
        server.stop()


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
