"""One `git ls-remote` per source per interval, shared by every Codeset on that source.

A source is (URL, ref, credentials scope). Each has one loop: wait for its interval (the shortest
of its subscribers', shortened by up to `jitter` so many sources do not poll in lockstep) or for a
`refresh()` (webhook, forced reconcile), run one ls-remote, hand the result to the listener with
the subscribers it concerns. A refresh that arrives while a poll runs schedules one more poll right
after it (the push may have landed after that poll asked). A new subscriber of a source polled less
than an interval ago gets that result at once instead of another git call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.api.conditions import FETCH_FAILED
from controller.operator.codesets.git import Git
from controller.operator.codesets.gitcredentials import Credentials
from controller.operator.codesets.giterrors import GitError
from controller.operator.codesets.spec import Source
from controller.operator.conditions import now_rfc3339

logger = logging.getLogger("sluice.operator.codesets.poller")

Key = tuple[str, str]  # (namespace, name) of a Codeset


@dataclass(frozen=True)
class PollResult:
    sha: str | None
    error: GitError | None
    at: str  # RFC 3339 time of the answer
    monotonic: float


Listener = Callable[[Source, frozenset[Key], PollResult], Awaitable[None]]
CredentialsFor = Callable[[Source], Awaitable[Credentials | None]]
PollObserver = Callable[[str, float, str | None], None]  # (result, seconds, error kind)


@dataclass
class _Watch:
    source: Source
    intervals: dict[Key, float] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last: PollResult | None = None
    task: asyncio.Task[None] | None = None
    polls: int = 0

    @property
    def interval(self) -> float:
        return min(self.intervals.values()) if self.intervals else 60.0


class Poller:
    def __init__(
        self,
        git: Git,
        credentials_for: CredentialsFor,
        listener: Listener,
        *,
        jitter: float = 0.1,
        max_concurrent: int = 16,
        on_poll: PollObserver | None = None,
    ):
        self._git = git
        self._credentials_for = credentials_for
        self._listener = listener
        self._jitter = jitter
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._on_poll = on_poll
        self._watches: dict[Source, _Watch] = {}
        self._source_of: dict[Key, Source] = {}
        self._closed = False

    # --- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, key: Key, source: Source, interval: float) -> None:
        """Start (or move) `key`'s subscription; it gets a result soon either way."""
        previous = self._source_of.get(key)
        if previous is not None and previous != source:
            self.unsubscribe(key)
        watch = self._watches.get(source)
        if watch is None:
            watch = self._watches[source] = _Watch(source)
        fresh = key not in watch.intervals
        watch.intervals[key] = float(interval)
        self._source_of[key] = source
        if watch.task is None and not self._closed:
            watch.task = asyncio.create_task(self._loop(watch), name="codeset poll")
            return
        if fresh and watch.last is not None and watch.last.error is None:
            age = time.monotonic() - watch.last.monotonic
            if age < watch.interval:
                last = watch.last
                self._deliver(watch.source, frozenset({key}), last)
                return
        if fresh:
            watch.wake.set()

    def unsubscribe(self, key: Key) -> None:
        source = self._source_of.pop(key, None)
        if source is None:
            return
        watch = self._watches.get(source)
        if watch is None:
            return
        watch.intervals.pop(key, None)
        if not watch.intervals:
            del self._watches[source]
            if watch.task is not None:
                watch.task.cancel()

    def refresh(self, key: Key) -> bool:
        """Poll `key`'s source now (coalesced with other refreshes); False if it is not subscribed."""
        source = self._source_of.get(key)
        watch = self._watches.get(source) if source is not None else None
        if watch is None:
            return False
        watch.wake.set()
        return True

    def polls(self, source: Source) -> int:
        watch = self._watches.get(source)
        return watch.polls if watch else 0

    @property
    def sources(self) -> int:
        return len(self._watches)

    async def close(self) -> None:
        self._closed = True
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()
        self._source_of.clear()

    # --- the loop --------------------------------------------------------------------------------

    async def _loop(self, watch: _Watch) -> None:
        pending: set[asyncio.Task[None]] = set()
        try:
            while watch.intervals:
                started = time.monotonic()
                result = await self._poll(watch)
                watch.last = result
                task = self._deliver(watch.source, frozenset(watch.intervals), result)
                pending.add(task)
                task.add_done_callback(pending.discard)
                # start to start: one poll per interval however long a poll takes
                period = watch.interval * (1 - random.uniform(0, self._jitter))
                delay = max(0.0, started + period - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.wake.wait(), delay)
        finally:
            for task in pending:
                task.cancel()

    def _deliver(self, source: Source, keys: frozenset[Key], result: PollResult) -> asyncio.Task[None]:
        async def deliver() -> None:
            try:
                await self._listener(source, keys, result)
            except Exception:  # a listener bug must never stop polling
                logger.exception("codeset poll listener failed")

        return asyncio.create_task(deliver(), name="codeset poll result")

    async def _poll(self, watch: _Watch) -> PollResult:
        async with self._semaphore:
            watch.wake.clear()  # refreshes from now on need another poll
            started = time.monotonic()
            sha: str | None = None
            error: GitError | None = None
            try:
                credentials = await self._credentials_for(watch.source)
                watch.polls += 1
                sha = await self._git.ls_remote(watch.source.url, watch.source.ref, credentials)
            except GitError as exc:
                error = exc
            except Exception as exc:  # e.g. the API server did not answer when reading the Secret
                logger.warning("codeset poll could not run: %s", type(exc).__name__)
                error = GitError(FETCH_FAILED, "other", "could not prepare the Git call; will retry")
            elapsed = time.monotonic() - started
        if self._on_poll is not None:
            changed = watch.last is None or watch.last.sha != sha
            outcome = "error" if error else ("changed" if changed else "unchanged")
            self._on_poll(outcome, elapsed, error.kind if error else None)
        return PollResult(sha, error, now_rfc3339(), time.monotonic())
