"""Dead, slow and authenticated Git servers; secrets never leak; 200 Codesets at once stay bounded."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from controller.operator import conditions as cond
from tests.codesets.conftest import CodesetOperator
from tests.codesets.test_gitops import codeset, codeset_status, wait_reason, wait_revision, workflow_yaml
from tests.codesets.test_webhooks import make_secret
from tests.operator.conftest import NAMESPACE, Api, eventually
from testsupport.gitserver import GitDaemon, Repo, SmartHTTP
from testsupport.operators import exposed

TOKEN = "glpat-Sup3rS3cretT0ken-4711"


async def test_slow_server_times_out_then_recovers(
    api: Api, operator: CodesetOperator, repo: Repo, http_server: SmartHTTP
) -> None:
    http_server.delay = 3.0  # longer than the 2 s ls-remote limit of the test configuration
    await api.apply(codeset(http_server.url(repo)))
    failed = await wait_reason(api, "FetchFailed")
    assert failed["status"] == "False" and "timed out" in failed["message"]
    status = await codeset_status(api)
    assert cond.is_true(status["conditions"], "Stalled") and "revision" not in status
    http_server.delay = 0
    ready = await wait_reason(api, "Succeeded")
    assert ready["status"] == "True"
    assert (await codeset_status(api))["revision"] == repo.head()


async def test_dead_server_fails_and_recovers_when_it_comes_up(
    api: Api, operator: CodesetOperator, repo: Repo, git_root: Path
) -> None:
    dead = GitDaemon(git_root)  # a port where nothing listens yet
    await api.apply(codeset(dead.url(repo)))
    failed = await wait_reason(api, "FetchFailed")
    assert "git ls-remote failed" in failed["message"]
    events = api.server.objects_of("v1/events", NAMESPACE)
    assert any(e["reason"] == "FetchFailed" and e["type"] == "Warning" for e in events)
    dead.start()
    try:
        await wait_revision(api, repo.head())
        await wait_reason(api, "Succeeded")
    finally:
        dead.stop()


async def test_token_works_and_never_leaks(
    api: Api, operator: CodesetOperator, repo: Repo, git_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = SmartHTTP(git_root, username="x-access-token", password=TOKEN).start()
    try:
        repo.commit({"workflows/train.yaml": workflow_yaml("train", codeset="private")})
        await make_secret(api, "git-token", {"token": TOKEN.encode()})
        await make_secret(api, "wrong-token", {"token": b"glpat-NotTheRightOne-0000000"})
        await api.apply(
            codeset(
                server.url(repo), name="private", secretRef={"name": "git-token"}, sync={"path": "workflows"}
            )
        )
        await api.apply(codeset(server.url(repo), name="denied", secretRef={"name": "wrong-token"}))
        await api.apply(codeset(server.url(repo), name="anonymous"))
        await api.apply(codeset(server.url(repo), name="no-secret", secretRef={"name": "missing"}))
        await wait_revision(api, repo.head(), name="private")
        for name in ("denied", "anonymous", "no-secret"):
            failed = await wait_reason(api, "AuthenticationFailed", name=name)
            assert failed["status"] == "False"
        await eventually(
            lambda: _truthy(
                [r for r in api.server.objects_of("sluice.dev/v1alpha1/workflowruns", NAMESPACE)]
            ),
            what="a run of the private repository",
        )
        assert server.requests["denied"] > 0  # the server really required credentials

        dump = exposed(api.server, await operator.metrics(), caplog.records)
        assert "AuthenticationFailed" in dump and "private" in dump  # the grep looks at real content
        for secret in (TOKEN, "glpat-NotTheRightOne-0000000", "Sup3rS3cret"):
            assert secret not in dump
    finally:
        server.stop()


async def test_many_codesets_on_one_source_share_one_poll_and_one_fetch(
    api: Api, operator: CodesetOperator, repo: Repo, http_server: SmartHTTP
) -> None:
    await asyncio.gather(*(api.apply(codeset(http_server.url(repo), name=f"same-{i}")) for i in range(20)))

    async def all_fetched() -> bool:
        objects = api.server.objects_of("sluice.dev/v1alpha1/codesets", NAMESPACE)
        return len(objects) == 20 and all(
            (o.get("status") or {}).get("revision") == repo.head() for o in objects
        )

    await eventually(all_fetched, timeout=30, what="20 codesets fetched")
    tracker = operator.tracker
    assert tracker.snapshots.fetches == 1
    assert tracker.poller.sources == 1
    before = dict(http_server.requests)
    await asyncio.sleep(3.2)  # three 1 s intervals
    polls = http_server.requests["ls-refs"] - before["ls-refs"]
    assert 2 <= polls <= 4, polls  # one per interval for all 20, not 20 per interval
    assert http_server.requests["upload-pack"] == before["upload-pack"]  # unchanged: no fetch


async def _truthy(value: object) -> object:
    return value
