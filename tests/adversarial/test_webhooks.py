"""Hostile deliveries to the Codeset webhook receiver, over real HTTP on 127.0.0.1: bad, missing
and replayed signatures, oversized and malformed bodies, unknown events and paths, odd headers.
Nothing but a correctly signed push to a tracked ref may schedule a refresh; nothing is a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

webhooks = pytest.importorskip(
    "controller.operator.codesets.webhooks", reason="the operator's webhook receiver is not importable"
)
from controller.operator.codesets.metrics import CodesetMetrics  # noqa: E402
from controller.operator.codesets.spec import GitRef  # noqa: E402

TOKEN = b"hook-secret-9f8e"
NAMESPACE, CODESET = "ml", "project"


@dataclass
class Receiver:
    url: str
    refreshes: list[tuple[str, str]] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def metric_labels(self) -> set[tuple[str, ...]]:
        found = set()
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.startswith("sluice_webhook"):
                    found.add(tuple(sorted(sample.labels.items())))
        return found


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver("")
    metrics = CodesetMetrics(box.registry)
    target = webhooks.WebhookTarget(NAMESPACE, CODESET, "hook", GitRef("branch", "main"))
    tokenless = webhooks.WebhookTarget(NAMESPACE, "tokenless", "empty", GitRef("branch", "main"))

    def lookup(namespace: str, name: str) -> object:
        return {(NAMESPACE, CODESET): target, (NAMESPACE, "tokenless"): tokenless}.get((namespace, name))

    async def read_token(namespace: str, secret: str) -> bytes | None:
        return TOKEN if secret == "hook" else None

    def refresh(namespace: str, name: str) -> bool:
        box.refreshes.append((namespace, name))
        return True

    server = webhooks.WebhookReceiver(lookup, read_token, refresh, metrics)
    await server.start("127.0.0.1", 0)
    box.url = f"http://127.0.0.1:{server.port}/hooks/{NAMESPACE}/{CODESET}"
    try:
        yield box
    finally:
        await server.stop()


def push(ref: str = "refs/heads/main") -> bytes:
    return json.dumps({"ref": ref, "after": "0" * 40}).encode()


def github(
    body: bytes, token: bytes = TOKEN, event: str = "push", delivery: str | None = None
) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(token, body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


BODY = push()
BAD_DELIVERIES = [
    ("missing-signature", BODY, {"X-GitHub-Event": "push"}, 401, "missing signature"),
    ("wrong-token", BODY, github(BODY, token=b"guess"), 401, "bad signature"),
    ("signature-of-another-body", BODY + b" ", github(BODY), 401, "bad signature"),
    (
        "sha1-signature",
        BODY,
        {"X-Hub-Signature-256": "sha1=" + hmac.new(TOKEN, BODY, "sha1").hexdigest()},
        401,
        "",
    ),
    ("empty-signature", BODY, {"X-Hub-Signature-256": ""}, 401, "bad signature"),
    ("truncated-signature", BODY, {"X-Hub-Signature-256": github(BODY)["X-Hub-Signature-256"][:-2]}, 401, ""),
    ("gitlab-wrong-token", BODY, {"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"}, 401, ""),
    ("gitlab-token-prefix", BODY, {"X-Gitlab-Token": TOKEN.decode()[:-1]}, 401, ""),
    ("gitea-not-hex", BODY, {"X-Gitea-Signature": "zz" * 32}, 401, ""),
    ("gitea-empty", BODY, {"X-Gitea-Signature": ""}, 401, ""),
    ("unknown-event", BODY, github(BODY, event="issues"), 202, "not a push event"),
    ("push-to-other-branch", push("refs/heads/evil"), github(push("refs/heads/evil")), 202, "does not track"),
    ("tag-push", push("refs/tags/v1"), github(push("refs/tags/v1")), 202, "does not track"),
]


@pytest.mark.parametrize(
    ("case", "body", "headers", "status", "fragment"), BAD_DELIVERIES, ids=[d[0] for d in BAD_DELIVERIES]
)
async def test_delivery_that_must_not_refresh(
    receiver: Receiver, case: str, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    code, answer = await post(receiver.url, body, headers)
    assert code == status and fragment in answer["message"], (code, answer)
    assert receiver.refreshes == []


async def test_replayed_delivery_refreshes_once(receiver: Receiver) -> None:
    headers = github(BODY, delivery="delivery-1")
    assert (await post(receiver.url, BODY, headers))[0] == 202
    for _ in range(3):
        code, answer = await post(receiver.url, BODY, headers)
        assert (code, answer["result"]) == (200, "duplicate")
    assert receiver.refreshes == [(NAMESPACE, CODESET)]


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_body_is_413_without_reading_it_all(receiver: Receiver, chunked: bool) -> None:
    big = b"{" + b" " * (webhooks.MAX_BODY_BYTES + 10) + b"}"
    if chunked:

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]

        code, answer = await post(receiver.url, stream(), github(big))  # type: ignore[arg-type]
    else:
        code, answer = await post(receiver.url, big, github(big))
    assert code == 413 and answer["result"] == "too_large"
    assert receiver.refreshes == []


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("not-json", b"{this is not json"),
        ("invalid-utf8", b'{"ref": "\xff\xfe"}'),
        ("json-list", b"[1, 2, 3]"),
        ("ref-not-a-string", b'{"ref": {"$gt": ""}}'),
        ("deeply-nested", b'{"ref": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        ("empty", b""),
    ],
)
async def test_signed_but_malformed_body_is_never_a_500(receiver: Receiver, case: str, body: bytes) -> None:
    """Signed by someone with the token: the body is still untrusted input."""
    code, answer = await post(receiver.url, body, github(body))
    assert code in (200, 202, 400), (code, answer)


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/ml/unknown",
        "/hooks/other/project",
        "/hooks/ml/project/extra",
        "/hooks/../../etc/passwd",
        "/metrics",
    ],
)
async def test_unknown_paths_are_404_and_keep_metric_labels_bounded(receiver: Receiver, path: str) -> None:
    base = receiver.url.split("/hooks/")[0]
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, data=BODY, headers=github(BODY)) as response,
    ):
        assert response.status in (404, 405)
    assert receiver.refreshes == []
    namespaces = {dict(labels).get("namespace") for labels in receiver.metric_labels()}
    assert namespaces <= {"", NAMESPACE}, namespaces


async def test_codeset_whose_secret_has_no_token_refuses_everything(receiver: Receiver) -> None:
    url = receiver.url.replace(CODESET, "tokenless")
    code, _answer = await post(url, BODY, github(BODY, token=b""))
    assert code == 401 and receiver.refreshes == []


async def test_non_ascii_signature_headers_are_401_not_500(receiver: Receiver) -> None:
    """Raw header bytes that are not ASCII (sent on a raw socket: HTTP clients refuse them)."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    for header in (
        b"X-Gitlab-Token: \xff\xfe",
        b"X-Hub-Signature-256: sha256=\xc3\xa9",
        b"X-Gitea-Signature: \xe2\x82\xac",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /hooks/ml/project HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + header
            + b"\r\n"
            + f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode()
            + BODY
        )
        await writer.drain()
        reply = await reader.read(65536)
        writer.close()
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 401), reply[:300]
    assert receiver.refreshes == []


async def test_valid_push_is_accepted_after_all_that(receiver: Receiver) -> None:
    """The control case: the same receiver accepts a correctly signed push."""
    code, answer = await post(receiver.url, BODY, github(BODY))
    assert (code, answer["result"]) == (202, "accepted")
    assert receiver.refreshes == [(NAMESPACE, CODESET)]


def test_no_free_port_collision() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        assert probe.getsockname()[1] > 0
