"""Signed webhooks over real HTTP into the running operator: good, bad, missing, replayed, oversized."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import aiohttp

from tests.codesets.conftest import CodesetOperator
from tests.codesets.test_gitops import codeset, codeset_status, wait_revision
from tests.operator.conftest import NAMESPACE, Api, eventually
from testsupport.gitserver import GitDaemon, Repo

WEBHOOK_TOKEN = b"hook-secret-5b1d"


async def make_secret(api: Api, name: str, data: dict[str, bytes]) -> None:
    await api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
    )


def push_body(ref: str = "refs/heads/main", after: str = "0" * 40) -> bytes:
    return json.dumps({"ref": ref, "after": after, "repository": {"full_name": "org/project"}}).encode()


def github_headers(body: bytes, token: bytes = WEBHOOK_TOKEN, delivery: str | None = None) -> dict[str, str]:
    signature = "sha256=" + hmac.new(token, body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def metric(operator: CodesetOperator, name: str, **labels: str) -> float:
    text = await operator.metrics()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_webhooks_refresh_at_once_only_when_signed(
    api: Api, operator: CodesetOperator, repo: Repo, daemon: GitDaemon
) -> None:
    await make_secret(api, "hook", {"token": WEBHOOK_TOKEN})
    first = repo.head()
    # a long interval: only a webhook can make the operator notice a push within the test
    await api.apply(codeset(daemon.url(repo), interval="1h", webhook={"secretRef": {"name": "hook"}}))
    status = await wait_revision(api, first)
    assert status["webhookPath"] == f"/hooks/{NAMESPACE}/project"
    url = await operator.webhook_url(status["webhookPath"])
    polls_before = await metric(operator, "sluice_git_polls_total")

    second = repo.commit({"src/a.py": "a = 1\n"})
    body = push_body(after="f" * 40)  # the SHA in the body is never read as the revision
    assert (await post(url, body, {"X-GitHub-Event": "push"}))[0] == 401
    bad = github_headers(body, token=b"wrong")
    assert (await post(url, body, bad))[0] == 401
    tampered = github_headers(body)
    assert (await post(url, body + b" ", tampered))[0] == 401
    assert (await post(url, body, {"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"}))[0] == 401
    assert (await post(url, body, {"X-Gitea-Signature": "00" * 32}))[0] == 401
    assert (await codeset_status(api))["revision"] == first
    assert await metric(operator, "sluice_git_polls_total") == polls_before  # nothing happened
    assert await metric(operator, "sluice_webhook_requests_total", result="unauthorized") == 5

    delivery = str(uuid.uuid4())
    started = time.monotonic()
    code, answer = await post(url, body, github_headers(body, delivery=delivery))
    assert code == 202, answer
    await wait_revision(api, second, timeout=5)
    assert time.monotonic() - started < 3
    # the same delivery again is acknowledged and ignored
    code, answer = await post(url, body, github_headers(body, delivery=delivery))
    assert (code, answer["result"]) == (200, "duplicate")

    # the same commit announced again under a new delivery id (a replayed body): nothing to read
    code, answer = await post(url, body, github_headers(body))
    assert (code, answer["result"]) == (200, "duplicate")

    third = repo.commit({"src/a.py": "a = 2\n"})
    gitlab = {"X-Gitlab-Token": WEBHOOK_TOKEN.decode(), "X-Gitlab-Event": "Push Hook"}
    assert (await post(url, push_body(after=third), gitlab))[0] == 202
    await wait_revision(api, third, timeout=5)

    fourth = repo.commit({"src/a.py": "a = 3\n"})
    body = push_body(after=fourth)
    gitea = {
        "X-Gitea-Signature": hmac.new(WEBHOOK_TOKEN, body, hashlib.sha256).hexdigest(),
        "X-Gitea-Event": "push",
    }
    assert (await post(url, body, gitea))[0] == 202
    await wait_revision(api, fourth, timeout=5)

    # a push to another branch is verified, then ignored
    other = push_body(ref="refs/heads/feature")
    code, answer = await post(url, other, github_headers(other))
    assert (code, answer["result"]) == (202, "ignored")

    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    assert (await post(url, big, github_headers(big)))[0] == 413
    code, _ = await post(
        await operator.webhook_url(f"/hooks/{NAMESPACE}/nothing"), body, github_headers(body)
    )
    assert code == 404
    assert await metric(operator, "sluice_webhook_requests_total", provider="github", result="accepted") == 1
    assert await metric(operator, "sluice_webhook_requests_total", result="unauthorized") == 5


async def test_webhook_path_absent_without_webhook(
    api: Api, operator: CodesetOperator, repo: Repo, daemon: GitDaemon
) -> None:
    await api.apply(codeset(daemon.url(repo)))
    status = await wait_revision(api, repo.head())
    assert "webhookPath" not in status
    body = push_body()
    url = await operator.webhook_url(f"/hooks/{NAMESPACE}/project")
    assert (await post(url, body, github_headers(body)))[0] == 404
    await eventually(
        lambda: metric(operator, "sluice_webhook_requests_total", result="not_found"), what="metric"
    )
