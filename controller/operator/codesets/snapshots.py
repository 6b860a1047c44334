"""Fetched commits, shared: one shallow fetch per (source, commit), behind a clone semaphore.

When 200 Codesets on one repository see a new commit, they all ask for the same snapshot: the first
request fetches, the others wait on it. Fetches of different repositories run at most
`max_concurrent` at a time, so 200 Codesets created at once never start 200 clones. A snapshot is a
bare repository (nothing is checked out: no filters, no hooks, no symlinks on disk) kept while in
use and for a few more requests (LRU), then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pathspec

from controller.operator.codesets.git import Git, TreeEntry
from controller.operator.codesets.gitcredentials import Credentials
from controller.operator.codesets.spec import Source

CredentialsFor = Callable[[Source], Awaitable[Credentials | None]]
FetchObserver = Callable[[str, float], None]  # (result, seconds)


def ignore_matcher(patterns: Sequence[str]) -> pathspec.PathSpec:
    """gitignore-style patterns, as in `.gitignore` and Flux's `.sourceignore`."""
    return pathspec.GitIgnoreSpec.from_lines(list(patterns))


@dataclass
class Snapshot:
    """The tree of one commit, fetched into a private bare repository."""

    source: Source
    sha: str
    repo: str
    entries: dict[str, TreeEntry]
    git: Git
    users: int = 0
    removed: bool = False

    def tracked(self, ignore: Sequence[str]) -> list[TreeEntry]:
        """Entries not excluded by the Codeset's `ignore` patterns."""
        if not ignore:
            return list(self.entries.values())
        matcher = ignore_matcher(ignore)
        return [e for e in self.entries.values() if not matcher.match_file(e.path)]

    def digest(self, ignore: Sequence[str]) -> str:
        """Identity of the tracked content: equal digests mean no change a run could notice."""
        lines = sorted(f"{e.mode} {e.oid} {e.path}" for e in self.tracked(ignore))
        return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()

    async def read(self, oids: Sequence[str]) -> dict[str, bytes]:
        return await self.git.read_blobs(self.repo, list(dict.fromkeys(oids)))


@dataclass
class _Slot:
    done: asyncio.Future[Snapshot]
    last_used: float = field(default_factory=time.monotonic)


class Snapshots:
    def __init__(
        self,
        git: Git,
        credentials_for: CredentialsFor,
        *,
        max_concurrent: int = 4,
        capacity: int = 64,
        workdir: str | None = None,
        on_fetch: FetchObserver | None = None,
    ):
        self._git = git
        self._credentials_for = credentials_for
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._capacity = capacity
        self._workdir = tempfile.mkdtemp(prefix="sluice-codesets-", dir=workdir)
        self._slots: OrderedDict[tuple[Source, str], _Slot] = OrderedDict()
        self._on_fetch = on_fetch
        self.fetches = 0  # git fetches started (tests and benchmarks)
        self.in_flight = 0
        self.max_in_flight = 0

    @contextlib.asynccontextmanager
    async def open(self, source: Source, sha: str) -> AsyncIterator[Snapshot]:
        """The snapshot of `sha`, fetched once however many callers ask; raises `GitError`."""
        key = (source, sha)
        slot = self._slots.get(key)
        if slot is None or _failed(slot.done):
            slot = _Slot(asyncio.get_running_loop().create_future())
            self._slots[key] = slot
            task = asyncio.create_task(self._fetch(source, sha, slot.done))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        self._slots.move_to_end(key)
        slot.last_used = time.monotonic()
        snapshot = await asyncio.shield(slot.done)
        snapshot.users += 1
        try:
            yield snapshot
        finally:
            snapshot.users -= 1
            self._evict()

    async def _fetch(self, source: Source, sha: str, done: asyncio.Future[Snapshot]) -> None:
        started = time.monotonic()
        result = "error"
        try:
            async with self._semaphore:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.fetches += 1
                repo = tempfile.mkdtemp(prefix="snapshot-", dir=self._workdir)
                try:
                    credentials = await self._credentials_for(source)
                    await self._git.fetch(source.url, [sha], repo, credentials)
                    entries = await self._git.list_tree(repo, sha)
                except BaseException:
                    shutil.rmtree(repo, ignore_errors=True)
                    raise
                finally:
                    self.in_flight -= 1
            snapshot = Snapshot(source, sha, repo, {e.path: e for e in entries}, self._git)
            result = "success"
            if not done.done():
                done.set_result(snapshot)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            # a failed fetch is not cached: the next request tries again
            self._slots.pop((source, sha), None)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._on_fetch is not None:
                self._on_fetch(result, time.monotonic() - started)

    def _evict(self) -> None:
        while len(self._slots) > self._capacity:
            victim = next(
                (k for k, s in self._slots.items() if s.done.done() and _unused(s.done)),
                None,
            )
            if victim is None:
                return
            slot = self._slots.pop(victim)
            _remove(slot.done)

    async def close(self) -> None:
        for slot in self._slots.values():
            if not slot.done.done():
                slot.done.cancel()
            else:
                _remove(slot.done)
        self._slots.clear()
        shutil.rmtree(self._workdir, ignore_errors=True)


def _failed(done: asyncio.Future[Snapshot]) -> bool:
    return done.done() and (done.cancelled() or done.exception() is not None)


def _unused(done: asyncio.Future[Snapshot]) -> bool:
    return _failed(done) or done.result().users == 0


def _remove(done: asyncio.Future[Snapshot]) -> None:
    if _failed(done):
        return
    snapshot = done.result()
    snapshot.removed = True
    shutil.rmtree(snapshot.repo, ignore_errors=True)
