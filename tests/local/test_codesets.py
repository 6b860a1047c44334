"""`--codeset NAME=PATH_OR_URL`: a folder used in place, a Git URL pinned to a commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from controller.executors.local.codesets import CodesetError, resolve
from controller.executors.local.runner import execute, prepare_run
from controller.executors.local.store import list_runs
from tests.local.helpers import FIXTURES

WORKFLOW = FIXTURES / "codeset-wf.yaml"
STAGES = Path(__file__).resolve().parents[2] / "stages"


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _repo(path: Path, message: str) -> str:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "message.txt").write_text(message)
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "first")
    return _git(path, "rev-parse", "HEAD")


def _run(home: Path, codeset: str) -> dict:
    prepared = prepare_run(WORKFLOW, [], [f"src={codeset}"], None)
    execute(prepared, use_cache=True, json_out=True, parallel=None, home=home)
    return next(r for r in list_runs(home) if r["run"] == prepared.pipelinerun["metadata"]["name"])


def _step(record: dict, name: str) -> dict:
    return next(s for s in record["steps"] if s["name"] == name)


def test_folder_is_used_in_place_and_edits_miss_the_cache(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "message.txt").write_text("first")
    record = _run(home, str(folder))
    assert _step(record, "read")["results"] == {"message": "first"}
    assert record["outputs"] == {"message": "first"}
    assert "used in place" in _step(record, "clone-src")["message"]

    again = _run(home, str(folder))
    assert _step(again, "read")["cached"]

    (folder / "message.txt").write_text("edited")
    edited = _run(home, str(folder))
    assert not _step(edited, "read")["cached"]
    assert _step(edited, "read")["results"] == {"message": "edited"}


def test_git_folder_revision_is_head(tmp_path: Path) -> None:
    head = _repo(tmp_path / "repo", "hello")
    codeset = resolve("src", str(tmp_path / "repo"))
    assert codeset.revision == head and codeset.folder == (tmp_path / "repo").resolve()


def test_git_url_is_pinned_to_a_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = _repo(tmp_path / "repo", "hello")
    url = f"file://{tmp_path / 'repo'}"
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT", raising=False)
    with pytest.raises(CodesetError, match="SLUICE_ALLOW_LOCAL_GIT"):
        resolve("src", url)
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    assert resolve("src", url).revision == head
    assert resolve("src", f"{url}#main").revision == head
    with pytest.raises(CodesetError, match="no branch or tag"):
        resolve("src", f"{url}#nope")
    with pytest.raises(CodesetError):
        resolve("src", "ext::sh -c touch% /tmp/pwned")


@pytest.mark.skipif(not (STAGES / "clone.py").exists(), reason="stages/clone.py has not landed yet")
def test_git_url_codeset_is_cloned_by_the_compiled_clone_task(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo(tmp_path / "repo", "from git")
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    record = _run(home, f"file://{tmp_path / 'repo'}")
    assert _step(record, "read")["results"] == {"message": "from git"}
