"""Hostile deliveries to the Codeset webhook receiver, over real HTTP on 127.0.0.1: bad, missing
and replayed signatures, oversized and malformed bodies, unknown events and paths, odd headers.
Nothing but a correctly signed push to a tracked ref may schedule a refresh; nothing is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
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
from controller.operator.codesets.webhooklimits import RefreshLimiter, TokenCache  # noqa: E402
from tests.adversarial.conftest import REPO  # noqa: E402

TOKEN = b"hook-secret-9f8e"
NAMESPACE, CODESET = "ml", "project"


@dataclass
class Receiver:
    url: str
    refreshes: list[tuple[str, str]] = field(default_factory=list)
    token_reads: int = 0
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
        box.token_reads += 1
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


# ---- issue 16: replays, Secret reads, slow and many connections ----------------------------------


async def test_replays_with_new_or_no_delivery_ids_cost_one_refresh(receiver: Receiver) -> None:
    """A captured signed body replayed 40 times with fresh delivery ids, and 40 times without one:
    one refresh, every replay answered `duplicate` (was: 80 ls-remote calls)."""
    results = []
    for i in range(80):
        headers = github(BODY, delivery=f"replay-{i}")
        if i >= 40:
            del headers["X-GitHub-Delivery"]
        code, answer = await post(receiver.url, BODY, headers)
        assert code == (202 if i == 0 else 200), answer
        results.append(answer["result"])
    assert receiver.refreshes == [(NAMESPACE, CODESET)]
    assert results == ["accepted"] + ["duplicate"] * 79


async def test_distinct_pushes_beyond_the_burst_are_coalesced_and_replays_of_two_bodies_are_bounded(
    receiver: Receiver,
) -> None:
    """Pushes of new commits in quick succession: a burst is refreshed at once, the rest coalesced
    into one later poll. Two captured bodies replayed in turn are not duplicates of each other (a
    branch may be pushed back to an older commit), so the bucket bounds them."""
    pushes = [json.dumps({"ref": "refs/heads/main", "after": f"{i:040x}"}).encode() for i in range(8)]
    results = [(await post(receiver.url, body, github(body)))[1]["result"] for body in pushes]
    assert results == ["accepted"] * 5 + ["coalesced"] * 3
    await asyncio.sleep(1.3)  # the coalesced pushes are picked up by one poll when a token comes
    assert len(receiver.refreshes) == 6
    alternating = [pushes[0], pushes[1]] * 20
    answers = [(await post(receiver.url, body, github(body)))[1]["result"] for body in alternating]
    assert set(answers) <= {"accepted", "coalesced"} and answers.count("accepted") <= 2


async def test_refresh_limiter_coalesces_instead_of_dropping() -> None:
    refreshes: list[float] = []
    limiter = RefreshLimiter(lambda ns, name: refreshes.append(1.0) is None, interval=0.3, burst=1)
    assert limiter.request(NAMESPACE, CODESET) == "accepted"
    assert [limiter.request(NAMESPACE, CODESET) for _ in range(20)] == ["coalesced"] * 20
    assert len(refreshes) == 1
    await asyncio.sleep(0.5)
    assert len(refreshes) == 2  # the push announced within the window is picked up, once
    limiter.close()


async def test_unsigned_and_badly_signed_posts_do_not_read_the_secret_each_time(receiver: Receiver) -> None:
    for _ in range(50):
        assert (await post(receiver.url, BODY, {"X-GitHub-Event": "push"}))[0] == 401
    assert receiver.token_reads == 0  # no signature header: refused before the Secret is read
    for _ in range(50):
        assert (await post(receiver.url, BODY, github(BODY, token=b"guess")))[0] == 401
    assert receiver.token_reads <= 2  # the cached token, re-read at most once per interval
    assert (await post(receiver.url, BODY, github(BODY)))[0] == 202


async def test_rotated_token_is_read_again_after_the_reread_interval() -> None:
    tokens = [b"old-token"]
    reads = 0

    async def read(namespace: str, secret: str) -> bytes | None:
        nonlocal reads
        reads += 1
        return tokens[-1]

    cache = TokenCache(read, ttl=300, reread_interval=0.2)
    assert await cache.get(NAMESPACE, "hook") == b"old-token"
    tokens.append(b"new-token")
    assert await cache.get(NAMESPACE, "hook", fresh=True) == b"old-token"  # too soon: cached
    await asyncio.sleep(0.3)
    assert await cache.get(NAMESPACE, "hook", fresh=True) == b"new-token"
    assert reads == 2


@pytest.fixture
async def tight() -> AsyncIterator[tuple[object, int]]:
    """A receiver with short connection bounds (the defaults are 20 s and 32 connections)."""
    metrics = CodesetMetrics(CollectorRegistry())
    target = webhooks.WebhookTarget(NAMESPACE, CODESET, "hook", GitRef("branch", "main"))

    async def read_token(namespace: str, secret: str) -> bytes | None:
        return TOKEN

    server = webhooks.WebhookReceiver(
        lambda ns, name: target if (ns, name) == (NAMESPACE, CODESET) else None,
        read_token,
        lambda ns, name: True,
        metrics,
        max_connections=16,
        connection_seconds=1.5,
        body_seconds=1.0,
    )
    await server.start("127.0.0.1", 0)
    assert server.port is not None
    try:
        yield server, server.port
    finally:
        await server.stop()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        await asyncio.wait_for(reader.read(), seconds)
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        pass
    return True


async def test_slow_headers_and_bodies_are_cut_off_and_connections_bounded(tight: tuple[object, int]) -> None:
    """60 connections sending a byte at a time (headers, then a body): none stays open past the
    connection bound, at most `max_connections` are served at once, and a real push still works."""
    server, port = tight
    connections = []
    for i in range(60):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /hooks/ml/project HTTP/1.1\r\nHost: x\r\n"
        if i % 2:  # complete headers, then a body that trickles
            head += b"X-Gitlab-Token: x\r\nContent-Length: 1000000\r\n\r\n{"
        writer.write(head)
        connections.append((reader, writer))
    await asyncio.sleep(0.2)
    assert server.open_connections <= 16  # type: ignore[attr-defined]
    for _ in range(3):  # keep trickling, a byte per connection every 0.3 s
        for _reader, writer in connections:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(b"X")
        await asyncio.sleep(0.3)
    closed = await asyncio.gather(*(_closed_within(r, 3.0) for r, _ in connections))
    assert all(closed), f"{closed.count(False)} of 60 slow connections still open"
    for _reader, writer in connections:
        writer.close()
    await asyncio.sleep(0.1)
    assert server.open_connections == 0  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}/hooks/{NAMESPACE}/{CODESET}"
    code, answer = await post(url, BODY, github(BODY))
    assert (code, answer["result"]) == (202, "accepted")


SERVER_SCRIPT = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from controller.api.codeset import GitRef
from controller.operator.codesets import webhooks
from controller.operator.codesets.metrics import CodesetMetrics

async def main():
    target = webhooks.WebhookTarget("ml", "project", "hook", GitRef("branch", "main"))
    async def token(ns, secret):
        return b"hook-secret-9f8e"
    server = webhooks.WebhookReceiver(lambda ns, n: target, token, lambda ns, n: True,
                                      CodesetMetrics(CollectorRegistry()))
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
async def test_150_slow_one_mib_bodies_do_not_grow_the_receiver(tmp_path: object) -> None:
    """Was: 150 clients each sending 1 MiB minus a byte, then stalling, grew the operator by 150 MiB.
    Now at most `max_connections` bodies are held at once, each for at most `connection_seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30))
        url = f"http://127.0.0.1:{port}/hooks/{NAMESPACE}/{CODESET}"
        assert (await post(url, BODY, github(BODY)))[0] == 202  # warmed up
        before = _rss(process.pid)
        size = 1024 * 1024
        writers = []
        for _ in range(150):
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    b"POST /hooks/ml/project HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\n"
                    + f"Content-Length: {size}\r\n\r\n".encode()
                    + b" " * (size - 1)
                )
                writers.append(writer)
        for writer in writers:
            with contextlib.suppress(ConnectionError, OSError):
                await asyncio.wait_for(writer.drain(), 2)
        await asyncio.sleep(1.0)
        grown = _rss(process.pid) - before
        for writer in writers:
            writer.close()
        print(f"receiver RSS growth under 150 slow 1 MiB bodies: {grown / 2**20:.1f} MiB")
        assert grown < 64 * 1024 * 1024, f"the receiver grew by {grown / 2**20:.0f} MiB"
    finally:
        process.kill()
        process.wait(10)
