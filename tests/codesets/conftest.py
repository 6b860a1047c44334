"""Fixtures: real repositories and Git servers on 127.0.0.1, started per test and stopped after,
and the whole operator (issue 6's handlers plus the Codeset handlers) against the kmock emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.operator import conftest as operator_fixtures
from testsupport.gitserver import GitDaemon, Repo, SmartHTTP

# the operator with the Codeset handlers lives in testsupport (benchmarks use it too)
from testsupport.operators import CodesetOperator, start_codeset_operator

__all__ = ["CodesetOperator", "start_codeset_operator"]

# the emulated API server and its client, as the operator tests use them
apiserver = operator_fixtures.apiserver
api = operator_fixtures.api


@pytest.fixture(autouse=True)
def allow_local_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def repo(git_root: Path) -> Repo:
    made = Repo(git_root)
    made.commit({"README.md": "hello\n"}, "first")
    return made


@pytest.fixture
def http_server(git_root: Path) -> Iterator[SmartHTTP]:
    server = SmartHTTP(git_root).start()
    yield server
    server.stop()


@pytest.fixture
def daemon(git_root: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(git_root).start()
    yield server
    server.stop()


@pytest.fixture
def codeset_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_WEBHOOK_PORT", "0")
    monkeypatch.setenv("SLUICE_WEBHOOK_HOST", "127.0.0.1")
    monkeypatch.setenv("SLUICE_CODESET_JITTER", "0")
    monkeypatch.setenv("SLUICE_GIT_LS_REMOTE_TIMEOUT", "2")
    monkeypatch.setenv("SLUICE_GIT_FETCH_TIMEOUT", "5")


@pytest.fixture
async def operator(api: operator_fixtures.Api, codeset_env: None) -> AsyncIterator[CodesetOperator]:
    running = await start_codeset_operator()
    yield running
    await running.stop()
