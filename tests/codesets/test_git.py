"""git.py against real servers: ls-remote, shallow fetch, limits, credentials only via askpass."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from pathlib import Path

import pytest

from controller.operator.codesets.git import Git, GitLimits
from controller.operator.codesets.gitcredentials import Credentials
from controller.operator.codesets.giterrors import GitError, classify
from controller.operator.codesets.spec import GitRef
from testsupport.gitserver import GitDaemon, HangingServer, LocalListener, Repo, SmartHTTP, free_port

TOKEN = "s3cr3t-token-Zq9xWv"


async def test_ls_remote_branch_and_annotated_tag_over_http(repo: Repo, http_server: SmartHTTP) -> None:
    first = repo.head()
    repo.tag("v1")
    second = repo.commit({"a.txt": "a"})
    git = Git()
    assert await git.ls_remote(http_server.url(repo), GitRef("branch", "main"), None) == second
    # an annotated tag is peeled to the commit it names
    assert await git.ls_remote(http_server.url(repo), GitRef("tag", "v1"), None) == first


async def test_ls_remote_over_git_daemon(repo: Repo, daemon: GitDaemon) -> None:
    sha = await Git().ls_remote(daemon.url(repo), GitRef("branch", "main"), None)
    assert sha == repo.head()


async def test_missing_branch_is_ref_not_found(repo: Repo, http_server: SmartHTTP) -> None:
    with pytest.raises(GitError) as caught:
        await Git().ls_remote(http_server.url(repo), GitRef("branch", "nope"), None)
    assert caught.value.reason == "RefNotFound"


async def test_fetch_one_commit_and_read_its_tree(repo: Repo, daemon: GitDaemon, tmp_path: Path) -> None:
    old = repo.head()
    sha = repo.commit({"workflows/a.yaml": "kind: Workflow\n", "src/train.py": "print(1)\n"})
    git = Git()
    target = str(tmp_path / "snap")
    await git.fetch(daemon.url(repo), [sha], target, None)
    entries = {e.path: e for e in await git.list_tree(target, sha)}
    assert set(entries) == {"README.md", "workflows/a.yaml", "src/train.py"}
    blobs = await git.read_blobs(target, [entries["src/train.py"].oid])
    assert blobs == {entries["src/train.py"].oid: b"print(1)\n"}
    # shallow: the parent commit was not fetched
    with pytest.raises(GitError):
        await git.list_tree(target, old)


async def test_fetch_larger_than_limit_is_stopped(repo: Repo, http_server: SmartHTTP, tmp_path: Path) -> None:
    import os

    sha = repo.commit({"big.bin": os.urandom(3 * 1024 * 1024)})
    git = Git(GitLimits(max_fetch_bytes=512 * 1024))
    with pytest.raises(GitError) as caught:
        await git.fetch(http_server.url(repo), [sha], str(tmp_path / "snap"), None)
    assert caught.value.kind == "too_large"


async def test_dead_server_fails_fast_as_fetch_failed(repo: Repo) -> None:
    url = f"http://127.0.0.1:{free_port()}/{repo.name}.git"
    started = time.monotonic()
    with pytest.raises(GitError) as caught:
        await Git().ls_remote(url, GitRef("branch", "main"), None)
    assert caught.value.reason == "FetchFailed"
    assert caught.value.kind == "unreachable"
    assert time.monotonic() - started < 5


async def test_hanging_server_times_out() -> None:
    hanging = HangingServer()
    try:
        git = Git(GitLimits(ls_remote_timeout=1.0))
        started = time.monotonic()
        with pytest.raises(GitError) as caught:
            await git.ls_remote(f"http://127.0.0.1:{hanging.port}/x.git", GitRef("branch", "main"), None)
        assert caught.value.kind == "timeout"
        assert "timed out" in caught.value.message
        assert time.monotonic() - started < 4
    finally:
        hanging.stop()


async def test_token_reaches_server_only_through_askpass(git_root: Path, repo: Repo) -> None:
    server = SmartHTTP(git_root, username="x-access-token", password=TOKEN).start()
    try:
        git = Git()
        url = server.url(repo)
        with pytest.raises(GitError) as caught:
            await git.ls_remote(url, GitRef("branch", "main"), None)
        assert caught.value.reason == "AuthenticationFailed"
        secret = {"data": {"token": base64.b64encode(TOKEN.encode()).decode()}}
        credentials = Credentials.from_secret(secret)
        assert TOKEN not in repr(credentials)
        assert await git.ls_remote(url, GitRef("branch", "main"), credentials) == repo.head()
        assert any(h.startswith("Basic ") for h in server.authorization_seen)
        wrong = Credentials(username="x-access-token", password="wrong-" + TOKEN)
        with pytest.raises(GitError) as caught:
            await git.ls_remote(url, GitRef("branch", "main"), wrong)
        assert caught.value.reason == "AuthenticationFailed"
        assert TOKEN not in caught.value.message
    finally:
        server.stop()


async def test_argv_never_holds_the_token(git_root: Path, repo: Repo) -> None:
    """While git runs, no process on the machine has the token in its command line."""
    server = SmartHTTP(git_root, username="u", password=TOKEN).start()
    server.delay = 0.5
    seen: list[str] = []

    async def watch() -> None:
        from pathlib import Path as P

        for _ in range(40):
            for proc in P("/proc").iterdir():
                if proc.name.isdigit():
                    with contextlib.suppress(OSError):
                        seen.append((proc / "cmdline").read_bytes().decode("utf-8", "replace"))
            await asyncio.sleep(0.02)

    try:
        credentials = Credentials(username="u", password=TOKEN)
        watcher = asyncio.create_task(watch())
        assert await Git().ls_remote(server.url(repo), GitRef("branch", "main"), credentials) == repo.head()
        await watcher
        assert any("ls-remote" in line for line in seen)
        assert not any(TOKEN in line for line in seen)
    finally:
        server.stop()


def test_classify_scrubs_url_credentials_and_secret_values() -> None:
    stderr = (
        "remote: Invalid username or password.\n"
        f"fatal: Authentication failed for 'https://bob:{TOKEN}@example.com/r.git/' ({TOKEN})\n"
    )
    reason, kind, line = classify(stderr, [TOKEN])
    assert (reason, kind) == ("AuthenticationFailed", "auth")
    assert TOKEN not in line and "bob" not in line


async def test_refuses_unsafe_urls_before_running_git(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.gitsafe import GitSafetyError

    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT")
    for url in ("ext::sh -c touch% /tmp/pwned", "file:///etc", "http://127.0.0.1/x.git", "--upload-pack=x"):
        with pytest.raises(GitSafetyError):
            await Git().ls_remote(url, GitRef("branch", "main"), None)


class _OpenPort(LocalListener):
    """A listening port on 127.0.0.1 that is not a Git server: `mode` is `close` (accepts and
    closes), `garbage` (answers with bytes that are neither TLS nor HTTP) or `http` (plain HTTP 400)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__(backlog=16)

    def handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(2)
            if self.mode == "garbage":
                conn.sendall(b"+OK redis-ish banner\r\n" * 4)
            elif self.mode == "http":
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()


@pytest.mark.parametrize("scheme", ["https", "http", "ssh"])
async def test_status_message_does_not_tell_open_ports_from_closed_ones(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: a Codeset's status was an SSRF port scanner (refused vs TLS error vs hung up)."""
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    servers = [_OpenPort(mode) for mode in ("close", "garbage", "http")]
    ports = [free_port(), *(s.port for s in servers)]
    messages = set()
    try:
        for port in ports:
            url = f"{scheme}://{'git@' if scheme == 'ssh' else ''}127.0.0.1:{port}/o/r.git"
            with pytest.raises(GitError) as caught:
                await Git(GitLimits(ls_remote_timeout=10.0)).ls_remote(url, GitRef("branch", "main"), None)
            messages.add((caught.value.reason, caught.value.message))
    finally:
        for server in servers:
            server.stop()
    assert len(messages) == 1, messages
    assert all(str(port) not in message for _, message in messages for port in ports)
