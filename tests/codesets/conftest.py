"""Fixtures: real repositories and Git servers on 127.0.0.1, started per test and stopped after,
and the whole operator (issue 6's handlers plus the Codeset handlers) against the kmock emulator."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import kopf
import pytest

from controller.operator.codesets.handlers import register, tracker_of
from controller.operator.codesets.tracker import CodesetTracker
from controller.operator.main import build_registry
from controller.operator.settings import OperatorConfig
from tests.codesets.gitserver import GitDaemon, Repo, SmartHTTP
from tests.operator import conftest as operator_fixtures
from tests.operator.conftest import RunningOperator, eventually

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


# --- the operator, with the Codeset handlers, against the kmock emulator of tests/operator -------


class CodesetOperator(RunningOperator):
    """The whole operator (issue 6's handlers plus the Codeset handlers) in its own thread and loop.

    kopf keeps an idle per-object worker for `idle_timeout` (5 s), so with `worker_limit` workers
    at most that many new objects start every 5 s: 200 Codesets at once need more workers than the
    operator tests' 16.
    """

    def __init__(self) -> None:
        super().__init__(dataclasses.replace(OperatorConfig.for_tests(), worker_limit=512))

    def _main(self) -> None:
        try:
            asyncio.run(self._operate())
        except BaseException as exc:
            self.error = exc

    async def _operate(self) -> None:
        registry = build_registry(self.runtime)
        register(registry, self.runtime)  # a no-op if build_registry already registered them
        await kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=True,
            stop_flag=self.stop_flag,
            ready_flag=self.ready_flag,
            memories=None,
        )

    @property
    def tracker(self) -> CodesetTracker:
        tracker = tracker_of(self.runtime)
        assert tracker is not None
        return tracker

    async def webhook_url(self, path: str) -> str:
        port = await eventually(lambda: _value(self.tracker.webhooks.port), what="webhook receiver")
        return f"http://127.0.0.1:{port}{path}"


async def _value(value: int | None) -> int | None:
    return value


@pytest.fixture
def codeset_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_WEBHOOK_PORT", "0")
    monkeypatch.setenv("SLUICE_WEBHOOK_HOST", "127.0.0.1")
    monkeypatch.setenv("SLUICE_CODESET_JITTER", "0")
    monkeypatch.setenv("SLUICE_GIT_LS_REMOTE_TIMEOUT", "2")
    monkeypatch.setenv("SLUICE_GIT_FETCH_TIMEOUT", "5")


async def start_codeset_operator() -> CodesetOperator:
    running = CodesetOperator()
    await running.start()
    return running


@pytest.fixture
async def operator(api: operator_fixtures.Api, codeset_env: None) -> AsyncIterator[CodesetOperator]:
    running = await start_codeset_operator()
    yield running
    await running.stop()
