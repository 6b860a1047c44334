"""What bounds the webhook receiver against floods and replays (issue 16).

- `RefreshLimiter`: a push announcing the same commit as the Codeset's last refresh is a replay
  (or a redelivery) and costs nothing; other refreshes are rate-limited per Codeset whatever the
  delivery id: a burst of five at once, then one poll per `min_refresh_interval`; deliveries beyond
  are coalesced into one poll when the next is allowed, so a push is never lost;
- `TokenCache`: the token is cached; a signature that fails against the cached token re-reads the
  Secret at most once per `reread_interval` (a rotated token takes effect within it). The operator
  may only `get` Secrets (never list or watch them, see the chart's RBAC), so the cache expires
  instead of watching;
- `DeliveryCache`: a delivery id seen before (GitHub, Gitea and GitLab send one) is not acted on
  twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

# One webhook-triggered poll of a Codeset per second once a burst of five is spent: people and CI
# push one branch far slower, and a replayed body never gets this far (`announced` below). Only a
# holder of the token can send distinct signed pushes; a second apart, their `git ls-remote`s
# (tens of ms each) stay a small load.
MIN_REFRESH_INTERVAL = 1.0
REFRESH_BURST = 5
TOKEN_TTL = 300.0
TOKEN_REREAD_INTERVAL = 30.0

TokenReader = Callable[[str, str], Awaitable[bytes | None]]  # (namespace, secret) -> token
Refresher = Callable[[str, str], bool]  # (namespace, codeset) -> poll scheduled


class DeliveryCache:
    """Delivery ids seen recently (bounded, with a time to live)."""

    def __init__(self, capacity: int = 10000, ttl: float = 24 * 3600):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl

    def seen_before(self, delivery: str) -> bool:
        now = time.monotonic()
        while self._seen and (
            len(self._seen) > self._capacity or next(iter(self._seen.values())) < now - self._ttl
        ):
            self._seen.popitem(last=False)
        if delivery in self._seen:
            return True
        self._seen[delivery] = now
        return False


class TokenCache:
    """Webhook tokens by (namespace, Secret): read once, kept `ttl` seconds; `reread` asks for a
    fresh read (after a failed signature) at most once per `reread_interval` per Secret."""

    def __init__(
        self, read: TokenReader, ttl: float = TOKEN_TTL, reread_interval: float = TOKEN_REREAD_INTERVAL
    ):
        self._read = read
        self._ttl = ttl
        self._reread_interval = reread_interval
        self._tokens: dict[tuple[str, str], tuple[bytes | None, float]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.reads = 0

    async def get(self, namespace: str, secret: str, *, fresh: bool = False) -> bytes | None:
        key = (namespace, secret)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent deliveries share one read
            now = time.monotonic()
            cached = self._tokens.get(key)
            if cached is not None:
                token, read_at = cached
                age = now - read_at
                if age < self._ttl and not (fresh and age >= self._reread_interval):
                    return token
            self.reads += 1
            token = await self._read(namespace, secret)
            self._tokens[key] = (token, time.monotonic())
            return token

    def forget(self, namespace: str, secret: str | None = None) -> None:
        for key in [k for k in self._tokens if k[0] == namespace and (secret is None or k[1] == secret)]:
            self._tokens.pop(key, None)
            self._locks.pop(key, None)


class RefreshLimiter:
    """Refreshes of one Codeset through a token bucket: `burst` at once (pushes in quick succession
    are each picked up at once), then one per `interval`. A request without a token is coalesced
    into one refresh when the next token comes (never dropped: the push it announces is picked up).
    A request announcing the commit the last accepted or coalesced one announced is a `duplicate`:
    that refresh reads it already. Only the last is compared, so a branch pushed back to an older
    commit is still refreshed."""

    def __init__(
        self, refresh: Refresher, interval: float = MIN_REFRESH_INTERVAL, burst: int = REFRESH_BURST
    ):
        self._refresh = refresh
        self._interval = interval
        self._burst = burst
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, at)
        self._deferred: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._announced: dict[tuple[str, str], str] = {}  # key -> commit its last refresh was for

    def _tokens(self, key: tuple[str, str], now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self._burst), now))
        return min(float(self._burst), tokens + (now - at) / self._interval)

    def request(self, namespace: str, name: str, announced: str | None = None) -> str:
        """`accepted` (polled now), `coalesced` (polled when a token comes), `duplicate` (the commit
        `announced` is the one the last refresh was for) or `untracked`."""
        key = (namespace, name)
        if announced is not None and self._announced.get(key) == announced:
            return "duplicate"
        outcome = self._request(key)
        if outcome != "untracked":
            if announced is None:
                self._announced.pop(key, None)
            else:
                self._announced[key] = announced
        return outcome

    def _request(self, key: tuple[str, str]) -> str:
        now = time.monotonic()
        tokens = self._tokens(key, now)
        if key in self._deferred:
            return "coalesced"
        if tokens >= 1.0:
            if not self._refresh(*key):
                return "untracked"
            self._buckets[key] = (tokens - 1.0, now)
            return "accepted"
        delay = (1.0 - tokens) * self._interval
        self._deferred[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)
        return "coalesced"

    def _fire(self, key: tuple[str, str]) -> None:
        self._deferred.pop(key, None)
        now = time.monotonic()
        self._buckets[key] = (max(0.0, self._tokens(key, now) - 1.0), now)
        self._refresh(*key)

    def close(self) -> None:
        for handle in self._deferred.values():
            handle.cancel()
        self._deferred.clear()
