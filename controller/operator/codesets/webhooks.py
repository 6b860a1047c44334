"""Signed push webhooks: `POST /hooks/{namespace}/{codeset}` refreshes that Codeset now.

Verified with the Codeset's `webhook.secretRef` Secret (key `token`):
- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
- Gitea/Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC-SHA256>`;
- GitLab: `X-Gitlab-Token: <token>`, compared in constant time.

The body is read up to `max_body` bytes (413 beyond). A bad or missing signature is a 401 and a
metric, nothing else. The payload is never trusted for a commit: at most its `ref` says the push was
to another branch (then nothing happens); otherwise the Codeset's source is polled at once and the
commit comes from Git. A delivery id seen before (GitHub, Gitea and GitLab send one) is not acted on
twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from controller.api.codeset import GitRef
from controller.operator.codesets.metrics import CodesetMetrics

logger = logging.getLogger("sluice.operator.codesets.webhooks")

MAX_BODY_BYTES = 1024 * 1024
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID")
EVENT_HEADERS = ("X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gitlab-Event")
PUSH_EVENTS = frozenset({"push", "create", "push hook", "tag push hook", "system hook"})


@dataclass(frozen=True)
class WebhookTarget:
    """What the receiver needs to know about a Codeset that has a webhook."""

    namespace: str
    name: str
    secret_name: str
    ref: GitRef


Lookup = Callable[[str, str], "WebhookTarget | None"]
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


def _pushed_ref(body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can follow
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    return ref if isinstance(ref, str) else None


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
    ):
        self._lookup = lookup
        self._read_token = read_token
        self._refresh = refresh
        self._metrics = metrics
        self._max_body = max_body
        self._deliveries = DeliveryCache()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/hooks/{namespace}/{name}", self._handle)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
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
        body = await self._read_body(request)
        if body is None:
            return self._answer(
                namespace, "none", "too_large", 413, f"body larger than {self._max_body} bytes"
            )
        token = await self._read_token(namespace, target.secret_name)
        if not token:
            logger.warning("webhook of codeset %s/%s: its Secret has no usable `token`", namespace, name)
            return self._answer(namespace, "none", "unauthorized", 401, "signature cannot be verified")
        provider, valid = verify(request, token, body)
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
        if not _concerns(target.ref, _pushed_ref(body)):
            return self._answer(
                namespace, provider, "ignored", 202, "push to a ref this Codeset does not track"
            )
        if not self._refresh(namespace, name):
            return self._answer(namespace, provider, "error", 503, "Codeset is not being tracked yet")
        return self._answer(namespace, provider, "accepted", 202, "refresh scheduled")
