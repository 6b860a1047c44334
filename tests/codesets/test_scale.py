"""The shared poller and the clone semaphore with real git: bounded work for many Codesets."""

from __future__ import annotations

import asyncio
import time

from controller.operator.codesets.git import Git
from controller.operator.codesets.gitcredentials import Credentials
from controller.operator.codesets.poller import Key, Poller, PollResult
from controller.operator.codesets.snapshots import Snapshots
from controller.operator.codesets.spec import GitRef, Source
from testsupport.gitserver import GitDaemon, Repo, SmartHTTP, git


async def no_credentials(source: Source) -> Credentials | None:
    return None


async def test_200_codesets_at_once_start_bounded_clones(repo: Repo, daemon: GitDaemon) -> None:
    """200 Codesets on 40 branches created at once: 40 ls-remotes, 40 fetches, never more than 4 at a time."""
    for index in range(40):
        git("branch", f"b{index}", cwd=repo.path)
    git_ = Git()
    snapshots = Snapshots(git_, no_credentials, max_concurrent=4)
    fetched: dict[Key, int] = {}

    async def listener(source: Source, keys: frozenset[Key], result: PollResult) -> None:
        async def one(key: Key) -> None:
            async with snapshots.open(source, str(result.sha)) as snapshot:
                fetched[key] = len(snapshot.entries)

        await asyncio.gather(*(one(key) for key in keys))

    poller = Poller(git_, no_credentials, listener, jitter=0)
    try:
        for index in range(200):
            source = Source(daemon.url(repo), GitRef("branch", f"b{index % 40}"))
            poller.subscribe(("ml", f"cs-{index}"), source, 3600)
        deadline = time.monotonic() + 60
        while len(fetched) < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(fetched) == 200
        assert set(fetched.values()) == {1}  # README.md
        assert poller.sources == 40
        assert sum(poller.polls(Source(daemon.url(repo), GitRef("branch", f"b{i}"))) for i in range(40)) == 40
        assert snapshots.fetches == 40
        assert 1 < snapshots.max_in_flight <= 4
    finally:
        await poller.close()
        await snapshots.close()


async def test_one_ls_remote_per_interval_whatever_the_subscribers(
    repo: Repo, http_server: SmartHTTP
) -> None:
    results: list[tuple[frozenset[Key], str | None]] = []

    async def listener(source: Source, keys: frozenset[Key], result: PollResult) -> None:
        results.append((keys, result.sha))

    poller = Poller(Git(), no_credentials, listener, jitter=0)
    source = Source(http_server.url(repo), GitRef("branch", "main"))
    try:
        for index in range(50):
            poller.subscribe(("ml", f"cs-{index}"), source, 1)
        await asyncio.sleep(2.5)
        polls = http_server.requests["ls-refs"]
        assert 2 <= polls <= 3, polls
        assert poller.polls(source) == polls
        # a refresh (webhook) polls at once, for everyone
        new = repo.commit({"a.txt": "a"})
        before = len(results)
        assert poller.refresh(("ml", "cs-7"))
        await asyncio.sleep(0.3)
        assert results[before][1] == new and len(results[before][0]) == 50
        # unsubscribing everyone stops the polling
        for index in range(50):
            poller.unsubscribe(("ml", f"cs-{index}"))
        settled = http_server.requests["ls-refs"]
        await asyncio.sleep(1.5)
        assert http_server.requests["ls-refs"] == settled
        assert poller.sources == 0
    finally:
        await poller.close()


async def test_new_subscriber_gets_the_fresh_result_without_a_git_call(
    repo: Repo, http_server: SmartHTTP
) -> None:
    seen: list[Key] = []

    async def listener(source: Source, keys: frozenset[Key], result: PollResult) -> None:
        seen.extend(keys)

    poller = Poller(Git(), no_credentials, listener, jitter=0)
    source = Source(http_server.url(repo), GitRef("branch", "main"))
    try:
        poller.subscribe(("ml", "first"), source, 60)
        await asyncio.sleep(0.5)
        calls = http_server.requests["ls-refs"]
        poller.subscribe(("ml", "second"), source, 60)
        await asyncio.sleep(0.2)
        assert ("ml", "second") in seen
        assert http_server.requests["ls-refs"] == calls == 1
    finally:
        await poller.close()
