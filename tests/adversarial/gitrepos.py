"""Hostile repositories built fast: `git fast-import` writes trees of any shape in one process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Mallory",
    "GIT_AUTHOR_EMAIL": "mallory@example.com",
    "GIT_COMMITTER_NAME": "Mallory",
    "GIT_COMMITTER_EMAIL": "mallory@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, input=stdin, capture_output=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


def fast_import_repo(path: Path, entries: Iterable[tuple[str, str, bytes]]) -> str:
    """A repository whose one commit on `main` holds `entries` of (mode, path, content); returns
    the commit. Identical contents share one blob, so 100 000 files cost one object."""
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", ".", cwd=path)
    marks: dict[bytes, int] = {}
    blobs: list[bytes] = []
    lines: list[bytes] = []
    for mode, name, content in entries:
        if mode == "160000":  # a gitlink (submodule): its "content" is the commit it pins
            lines.append(f"M 160000 {content.decode()} {name}\n".encode())
            continue
        if content not in marks:
            marks[content] = len(marks) + 1
            blobs.append(b"blob\nmark :%d\ndata %d\n%s\n" % (marks[content], len(content), content))
        lines.append(f"M {mode} :{marks[content]} {name}\n".encode())
    stream = b"".join(blobs)
    stream += b"commit refs/heads/main\ncommitter Mallory <m@example.com> 0 +0000\ndata 4\nevil\n"
    stream += b"".join(lines) + b"\n"
    git("fast-import", "--quiet", cwd=path, stdin=stream)
    return git("rev-parse", "main", cwd=path)


def sparse_file_repo(path: Path, name: str, size: int, extra: dict[str, str]) -> str:
    """A repository with one `size`-byte file of zeros (sparse on disk), committed for real."""
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", ".", cwd=path)
    target = path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:
        handle.truncate(size)
    for rel, text in extra.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git("-c", "core.bigFileThreshold=1m", "add", "-A", cwd=path)
    git("commit", "-q", "-m", "big", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)
