"""Signed push webhooks: `POST /hooks/{namespace}/{codeset}` refreshes that Codeset now.

Verified with the Codeset's `webhook.secretRef` Secret (key `token`):
- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
- Gitea/Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC-SHA256>`;
- GitLab: `X-Gitlab-Token: <token>`, compared in constant time.

The body is read up to `max_body` bytes (413 beyond). A bad or missing signature is a 401 and a
metric, nothing else. The payload is never trusted for a commit: at most its `ref` says the push was
to another branch (then nothing happens); otherwise the Codeset's source is polled at once and the
commit comes from Git. A delivery id seen before (GitHub, Gitea and GitLab send one) is not acted on
twice, nor is a push announcing (`after`) the commit the Codeset's last refresh was asked for.

Bounded against floods and replays (issue 16):
- refreshes are rate-limited per Codeset, the token is cached and delivery ids are remembered
  (`webhooklimits`);
- a request without any signature header is refused before the Secret is read;
- each connection lives at most `connection_seconds` (headers, body and keep-alive together), the
  body must arrive within `body_seconds`, and at most `max_connections` are open at once (more are
  closed at once): slow senders cannot hold memory or sockets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from controller.api.codeset import GitRef
from controller.operator.codesets.metrics import CodesetMetrics
from controller.operator.codesets.webhooklimits import (
    MIN_REFRESH_INTERVAL,
    TOKEN_REREAD_INTERVAL,
    TOKEN_TTL,
    DeliveryCache,
    Refresher,
    RefreshLimiter,
    TokenCache,
    TokenReader,
)

logger = logging.getLogger("sluice.operator.codesets.webhooks")

MAX_BODY_BYTES = 1024 * 1024
COMMIT = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")  # SHA-1 or SHA-256 object names
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID")
EVENT_HEADERS = ("X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gitlab-Event")
PUSH_EVENTS = frozenset({"push", "create", "push hook", "tag push hook", "system hook"})
SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature", "X-Gitlab-Token")
MAX_CONNECTIONS = 32
CONNECTION_SECONDS = 20.0
BODY_SECONDS = 10.0


@dataclass(frozen=True)
class WebhookTarget:
    """What the receiver needs to know about a Codeset that has a webhook."""

    namespace: str
    name: str
    secret_name: str
    ref: GitRef


Lookup = Callable[[str, str], "WebhookTarget | None"]


def _hmac_hex(token: bytes, body: bytes) -> str:
    return hmac.new(token, body, hashlib.sha256).hexdigest()


def verify(headers: web.BaseRequest | dict[str, str], token: bytes, body: bytes) -> tuple[str, bool]:
    """(provider, valid) for a delivery; provider "none" when no signature header is present."""
    get = headers.headers.get if isinstance(headers, web.BaseRequest) else headers.get
    github = get("X-Hub-Signature-256")
    if github is not None:
        expected = "sha256=" + _hmac_hex(token, body)
        return "github", hmac.compare_digest(_raw(github.strip()), expected.encode())
    gitea = get("X-Gitea-Signature") or get("X-Forgejo-Signature")
    if gitea is not None:
        return "gitea", hmac.compare_digest(_raw(gitea.strip().lower()), _hmac_hex(token, body).encode())
    gitlab = get("X-Gitlab-Token")
    if gitlab is not None:
        return "gitlab", hmac.compare_digest(_raw(gitlab), token)
    return "none", False


def _raw(header: str) -> bytes:
    """A header value as bytes; aiohttp keeps bytes that are not UTF-8 as surrogate escapes, which
    a strict encode() would raise on (a 500 instead of a 401)."""
    return header.encode("utf-8", "surrogateescape")


def _pushed(body: bytes) -> tuple[str | None, str | None]:
    """The ref a push moved and the commit it announces (`after`: GitHub, Gitea, GitLab), if the
    payload says. The commit is only compared with the last refresh's, never read as a revision."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can follow
        return None, None
    if not isinstance(payload, dict):
        return None, None
    ref, after = payload.get("ref"), payload.get("after")
    return (
        ref if isinstance(ref, str) else None,
        after.lower() if isinstance(after, str) and COMMIT.fullmatch(after) else None,
    )


def _concerns(target: GitRef, pushed: str | None) -> bool:
    """Whether a push to `pushed` can move what the Codeset tracks (unknown -> assume it can)."""
    if target.kind == "commit":
        return False
    if pushed is None or target.kind == "head":
        return True
    if target.kind == "branch" and not pushed.startswith("refs/"):
        return pushed == target.name  # Gitea "create" events send a bare name
    return pushed == target.full_name


class WebhookReceiver:
    def __init__(
        self,
        lookup: Lookup,
        read_token: TokenReader,
        refresh: Refresher,
        metrics: CodesetMetrics,
        *,
        max_body: int = MAX_BODY_BYTES,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
        max_connections: int = MAX_CONNECTIONS,
        connection_seconds: float = CONNECTION_SECONDS,
        body_seconds: float = BODY_SECONDS,
        token_ttl: float = TOKEN_TTL,
        token_reread_interval: float = TOKEN_REREAD_INTERVAL,
    ):
        self._lookup = lookup
        self.tokens = TokenCache(read_token, token_ttl, token_reread_interval)
        self._limiter = RefreshLimiter(refresh, min_refresh_interval)
        self._metrics = metrics
        self._max_body = max_body
        self._max_connections = max_connections
        self._connection_seconds = connection_seconds
        self._body_seconds = body_seconds
        self._deliveries = DeliveryCache()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self.open_connections = 0
        self.refused_connections = 0
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/hooks/{namespace}/{name}", self._handle)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, max_field_size=8190, max_headers=64)
        await self._runner.setup()
        factory = self._runner.server
        assert factory is not None
        loop = asyncio.get_running_loop()
        # aiohttp's own site has no bound on connections or on how long one may take: its protocol
        # factory is wrapped instead (`_protocol`)
        self._server = await loop.create_server(
            lambda: self._protocol(factory, loop), host, port, reuse_address=True, backlog=128
        )
        sockets: list[Any] = list(self._server.sockets or [])
        self.port = sockets[0].getsockname()[1] if sockets else port

    def _protocol(self, factory: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> asyncio.BaseProtocol:
        """aiohttp's handler for one connection, closed after `connection_seconds`; or, with
        `max_connections` already open, a protocol that closes the connection at once."""
        if self.open_connections >= self._max_connections:
            self.refused_connections += 1
            return _Closer()
        return _Guarded(self, factory(), loop)

    async def stop(self) -> None:
        self._limiter.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _answer(self, namespace: str, provider: str, result: str, status: int, text: str) -> web.Response:
        self._metrics.webhooks.labels(namespace=namespace, provider=provider, result=result).inc()
        return web.json_response({"result": result, "message": text}, status=status)

    async def _read_body(self, request: web.Request) -> bytes | None:
        if request.content_length is not None and request.content_length > self._max_body:
            return None
        # read() returns what has arrived so far, not the whole body: read until the end (a chunked
        # body has no Content-Length) or until the limit is passed
        chunks: list[bytes] = []
        size = 0
        while size <= self._max_body:
            chunk = await request.content.read(self._max_body + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > self._max_body else b"".join(chunks)

    async def _handle(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        target = self._lookup(namespace, name)
        if target is None:
            # the namespace label stays bounded: only namespaces of existing Codesets are counted
            return self._answer("", "none", "not_found", 404, "no Codeset with a webhook at this path")
        if not any(request.headers.get(h) is not None for h in SIGNATURE_HEADERS):
            # refused before anything is read: an unsigned flood costs no Secret read
            return self._answer(namespace, "none", "unauthorized", 401, "missing signature")
        try:
            body = await asyncio.wait_for(self._read_body(request), self._body_seconds)
        except TimeoutError:
            return self._answer(
                namespace, "none", "timeout", 408, f"body not sent within {self._body_seconds:g} s"
            )
        if body is None:
            return self._answer(
                namespace, "none", "too_large", 413, f"body larger than {self._max_body} bytes"
            )
        token = await self.tokens.get(namespace, target.secret_name)
        provider, valid = verify(request, token, body) if token else ("none", False)
        if not valid:  # the token may have been rotated: read it again (at most once per interval)
            fresh = await self.tokens.get(namespace, target.secret_name, fresh=True)
            if fresh and fresh != token:
                token = fresh
                provider, valid = verify(request, token, body)
        if not token:
            logger.warning("webhook of codeset %s/%s: its Secret has no usable `token`", namespace, name)
            return self._answer(namespace, "none", "unauthorized", 401, "signature cannot be verified")
        if not valid:
            message = "missing signature" if provider == "none" else "bad signature"
            return self._answer(namespace, provider, "unauthorized", 401, message)
        delivery = next((request.headers[h] for h in DELIVERY_HEADERS if request.headers.get(h)), None)
        if delivery and self._deliveries.seen_before(f"{namespace}/{name}/{delivery[:128]}"):
            return self._answer(namespace, provider, "duplicate", 200, "delivery already handled")
        event = next((request.headers[h] for h in EVENT_HEADERS if request.headers.get(h)), None)
        if event is not None and event.lower() == "ping":
            return self._answer(namespace, provider, "ping", 200, "pong")
        if event is not None and event.lower() not in PUSH_EVENTS:
            return self._answer(namespace, provider, "ignored", 202, "not a push event")
        ref, announced = _pushed(body)
        if not _concerns(target.ref, ref):
            return self._answer(
                namespace, provider, "ignored", 202, "push to a ref this Codeset does not track"
            )
        outcome = self._limiter.request(namespace, name, announced)
        if outcome == "duplicate":
            return self._answer(namespace, provider, "duplicate", 200, "commit already refreshed")
        if outcome == "untracked":
            return self._answer(namespace, provider, "error", 503, "Codeset is not being tracked yet")
        if outcome == "coalesced":
            return self._answer(namespace, provider, "coalesced", 202, "refresh already scheduled")
        return self._answer(namespace, provider, "accepted", 202, "refresh scheduled")


class _Guarded(asyncio.Protocol):
    """aiohttp's handler of one connection (its methods have __slots__: wrapped, not patched), with
    the receiver's count of open connections and a deadline for the whole connection."""

    def __init__(self, receiver: WebhookReceiver, handler: Any, loop: asyncio.AbstractEventLoop):
        self._receiver = receiver
        self._handler = handler
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._receiver.open_connections += 1
        abort = getattr(transport, "abort", transport.close)
        self._timer = self._loop.call_later(self._receiver._connection_seconds, abort)
        self._handler.connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._receiver.open_connections -= 1
        if self._timer is not None:
            self._timer.cancel()
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class _Closer(asyncio.Protocol):
    """A connection over the receiver's limit: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
