"""Talking to Git servers: `ls-remote`, a bounded shallow fetch, and reading objects of a commit.

Every call runs `git` with `controller.gitsafe.git_env` (no prompts, no global config, allowed
protocols only, hooks off, submodules off), `--end-of-options` before any user-given value, in its
own process group so a timeout kills git's transport helpers too. Credentials from a Codeset's
Secret reach git only through its environment (`gitcredentials`); error text from git is scrubbed
of URL credentials and of the Secret's own values before it is kept (`giterrors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller import gitsafe
from controller.api.codeset import GitRef
from controller.api.conditions import FETCH_FAILED, REF_NOT_FOUND
from controller.operator.codesets.gitcredentials import Credentials, credential_env
from controller.operator.codesets.giterrors import GitError, classify, scrub


@dataclass(frozen=True)
class GitLimits:
    ls_remote_timeout: float = 30.0
    fetch_timeout: float = 120.0
    max_fetch_bytes: int = 256 * 1024 * 1024
    max_output_bytes: int = 4 * 1024 * 1024  # stdout of ls-remote / ls-tree

    @classmethod
    def from_env(cls) -> GitLimits:
        base = cls()
        return cls(
            ls_remote_timeout=float(os.environ.get("SLUICE_GIT_LS_REMOTE_TIMEOUT", base.ls_remote_timeout)),
            fetch_timeout=float(os.environ.get("SLUICE_GIT_FETCH_TIMEOUT", base.fetch_timeout)),
            max_fetch_bytes=int(os.environ.get("SLUICE_GIT_MAX_FETCH_BYTES", base.max_fetch_bytes)),
        )


@dataclass(frozen=True)
class TreeEntry:
    mode: str  # 100644, 100755, 120000 (symlink), 160000 (submodule), ...
    kind: str  # blob | commit
    oid: str
    size: int  # -1 for submodules
    path: str

    @property
    def is_symlink(self) -> bool:
        return self.mode == "120000"

    @property
    def is_file(self) -> bool:
        return self.kind == "blob" and not self.is_symlink


@dataclass
class Completed:
    stdout: bytes
    stderr: str
    returncode: int


async def _run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    cwd: str | None = None,
    stdin: bytes | None = None,
    max_output: int,
    watch_dir: str | None = None,
    max_dir_bytes: int | None = None,
) -> Completed:
    """Run git; kill its whole process group on timeout, on output over `max_output`, or when
    `watch_dir` grows past `max_dir_bytes` (the fetch size limit)."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    too_large = False

    async def watch_size() -> None:
        nonlocal too_large
        assert watch_dir is not None and max_dir_bytes is not None
        while True:
            await asyncio.sleep(0.1)
            if _tree_size(watch_dir) > max_dir_bytes:
                too_large = True
                _kill(process)
                return

    watcher = asyncio.create_task(watch_size()) if watch_dir and max_dir_bytes else None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        _kill(process)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)
        raise GitError(FETCH_FAILED, "timeout", f"git {args[1]} timed out after {timeout:g}s") from None
    except asyncio.CancelledError:
        _kill(process)
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
    if watch_dir and max_dir_bytes and not too_large:
        too_large = _tree_size(watch_dir) > max_dir_bytes  # it finished between two checks
    if too_large:
        raise GitError(FETCH_FAILED, "too_large", f"repository larger than {max_dir_bytes} bytes")
    if len(stdout) > max_output:
        raise GitError(FETCH_FAILED, "too_large", f"git {args[1]} printed more than {max_output} bytes")
    assert process.returncode is not None
    return Completed(stdout, stderr.decode("utf-8", "replace"), process.returncode)


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _init_bare(repo: str) -> None:
    """An empty bare repository, written directly (one process less per fetch than `git init`)."""
    root = Path(repo)
    for folder in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")


def _tree_size(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class Git:
    """git operations with limits; one instance per operator process."""

    def __init__(self, limits: GitLimits | None = None):
        self.limits = limits or GitLimits()

    async def ls_remote(self, url: str, ref: GitRef, credentials: Credentials | None) -> str:
        """The commit `ref` points at on the server (annotated tags peeled)."""
        gitsafe.validate_url(url)
        if ref.kind == "commit":
            return ref.name
        patterns = [ref.full_name] + ([f"{ref.full_name}^{{}}"] if ref.kind == "tag" else [])
        secrets = credentials.secret_values() if credentials else []
        with credential_env(credentials) as env:
            done = await _run(
                ["git", "ls-remote", "--end-of-options", url, *patterns],
                env=env,
                timeout=self.limits.ls_remote_timeout,
                max_output=self.limits.max_output_bytes,
            )
        if done.returncode != 0:
            reason, kind, line = classify(done.stderr, secrets)
            raise GitError(reason, kind, f"git ls-remote failed: {line}")
        found: dict[str, str] = {}
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            sha, _, name = line.partition("\t")
            found[name.strip()] = sha.strip()
        commit = found.get(f"{ref.full_name}^{{}}") or found.get(ref.full_name)
        if not commit or not gitsafe.is_commit_sha(commit):
            raise GitError(REF_NOT_FOUND, "not_found", f"{ref.kind} {ref.name!r} not found in the repository")
        return commit

    async def fetch(self, url: str, shas: Sequence[str], repo: str, credentials: Credentials | None) -> None:
        """Shallow-fetch commits into a fresh bare repository at `repo` (no tags, no submodules)."""
        gitsafe.validate_url(url)
        for sha in shas:
            if not gitsafe.is_commit_sha(sha):
                raise GitError(FETCH_FAILED, "other", "refusing to fetch something that is not a commit SHA")
        secrets = credentials.secret_values() if credentials else []
        _init_bare(repo)
        with credential_env(credentials) as env:
            done = await _run(
                [
                    "git",
                    "-C",
                    repo,
                    "fetch",
                    "--quiet",
                    "--depth=1",
                    "--no-tags",
                    "--no-recurse-submodules",
                    "--no-write-fetch-head",
                    "--end-of-options",
                    url,
                    *[f"{sha}:refs/sluice/{sha}" for sha in shas],
                ],
                env=env,
                timeout=self.limits.fetch_timeout,
                max_output=self.limits.max_output_bytes,
                watch_dir=repo,
                max_dir_bytes=self.limits.max_fetch_bytes,
            )
        if done.returncode != 0:
            reason, kind, line = classify(done.stderr, secrets)
            raise GitError(reason, kind, f"git fetch failed: {line}")

    async def list_tree(self, repo: str, sha: str) -> list[TreeEntry]:
        """Every entry of the commit's tree, recursively, with sizes (nothing is checked out)."""
        done = await _run(
            ["git", "-C", repo, "ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options", sha],
            env=gitsafe.git_env(),
            timeout=60,
            max_output=self.limits.max_output_bytes * 4,
        )
        if done.returncode != 0:
            raise GitError(FETCH_FAILED, "other", f"git ls-tree failed: {scrub(done.stderr)[:200]}")
        entries: list[TreeEntry] = []
        for record in done.stdout.split(b"\x00"):
            if not record:
                continue
            head, _, path = record.partition(b"\t")
            mode, kind, oid, size = head.decode().split()
            entries.append(
                TreeEntry(
                    mode, kind, oid, int(size) if size.isdigit() else -1, path.decode("utf-8", "replace")
                )
            )
        return entries

    async def read_blobs(self, repo: str, oids: Sequence[str]) -> dict[str, bytes]:
        """Contents of blobs by object id, in one `git cat-file --batch`."""
        if not oids:
            return {}
        request = "".join(f"{oid}\n" for oid in oids).encode()
        done = await _run(
            ["git", "-C", repo, "cat-file", "--batch"],
            env=gitsafe.git_env(),
            timeout=60,
            stdin=request,
            max_output=self.limits.max_fetch_bytes,
        )
        if done.returncode != 0:
            raise GitError(FETCH_FAILED, "other", f"git cat-file failed: {scrub(done.stderr)[:200]}")
        blobs: dict[str, bytes] = {}
        data, offset = done.stdout, 0
        while offset < len(data):
            end = data.index(b"\n", offset)
            header = data[offset:end].decode().split()
            offset = end + 1
            if len(header) < 3 or header[1] == "missing":
                continue
            size = int(header[2])
            blobs[header[0]] = data[offset : offset + size]
            offset += size + 1
        return blobs
