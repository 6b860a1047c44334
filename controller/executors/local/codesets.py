"""`--codeset NAME=PATH_OR_URL` for local runs.

- A folder is used as it is, uncommitted edits included (that is what one iterates on). Its
  revision is the git HEAD commit when it is a repository, else a sha256 of its files; the
  compiled clone task is replaced by exposing the folder itself (see `engine.LocalRun`), and
  its content digest enters the cache key of every task that reads it.
- A Git URL (`URL` or `URL#REF`) is pinned to a commit with `git ls-remote` under the safety
  rules of `controller.gitsafe` (`file://` and loopback URLs need `SLUICE_ALLOW_LOCAL_GIT=1`);
  the compiled clone task then checks that commit out, exactly as on a cluster.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from controller.executors.local.cache import tree, tree_digest
from controller.gitsafe import GitSafetyError, git_env, is_commit_sha, scrub, validate_ref, validate_url

GIT_TIMEOUT_SECONDS = 60


class CodesetError(ValueError):
    """A `--codeset` value that cannot be used; the message says why."""


@dataclass(frozen=True)
class LocalCodeset:
    name: str
    url: str  # what the compiled clone task is given
    revision: str  # a commit SHA, or a 64-hex content hash for a folder that is not a repository
    folder: Path | None  # a local folder, used in place


def parse_option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise CodesetError(f"--codeset {text!r}: expected NAME=PATH_OR_URL")
    return name, value


def folder_revision(folder: Path) -> str:
    """git HEAD of a repository folder; otherwise the sha256 of its files."""
    if (folder / ".git").exists():
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "HEAD^{commit}"],
            capture_output=True,
            text=True,
            env=git_env(allow_local=True),
            timeout=GIT_TIMEOUT_SECONDS,
        )
        if done.returncode == 0 and is_commit_sha(done.stdout.strip()):
            return done.stdout.strip()
    return tree_digest([e for e in tree(folder) if not e["path"].startswith(".git/")])


def pin_remote(url: str, ref: str | None) -> str:
    """The commit `ref` (default HEAD) names in the repository at `url`."""
    if ref and is_commit_sha(ref):
        return ref
    wanted = ref or "HEAD"
    done = subprocess.run(
        ["git", "ls-remote", "--", url, wanted],
        capture_output=True,
        text=True,
        env=git_env(),
        timeout=GIT_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        raise CodesetError(
            "git ls-remote failed: " + scrub((done.stderr.strip() or "no output").splitlines()[-1])
        )
    rows = [line.split("\t") for line in done.stdout.splitlines() if "\t" in line]
    for candidates in (
        [wanted],
        [f"refs/heads/{wanted}", f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}"],
    ):
        for sha, name in rows:
            if name in candidates and is_commit_sha(sha):
                return sha
    raise CodesetError(f"{scrub(url)} has no branch or tag {wanted!r}")


def resolve(name: str, value: str, cwd: Path | None = None) -> LocalCodeset:
    """A `--codeset` value as the compiler and the executor need it."""
    folder = (cwd or Path.cwd()) / Path(value).expanduser()
    if "://" not in value and folder.is_dir():
        folder = folder.resolve()
        return LocalCodeset(name, str(folder), folder_revision(folder), folder)
    url, _, ref = value.partition("#")
    try:
        validate_url(url)
        if ref:
            validate_ref(ref)
    except GitSafetyError as exc:
        if "://" not in value and not Path(value).exists():
            raise CodesetError(
                f"--codeset {name}: {value!r} is neither a folder nor a Git URL ({exc})"
            ) from None
        raise CodesetError(f"--codeset {name}: {exc}") from None
    return LocalCodeset(name, url, pin_remote(url, ref or None), None)


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def checkout_in_place(argv: list[str], folders: dict[str, Path]) -> dict[str, str] | None:
    """For a `python -m stages.clone --url U --dest D --result R=PATH` step whose URL is a local
    folder: link D to the folder (edits included) and write the results; None for any other step."""
    if "stages.clone" not in argv:
        return None
    urls = _option(argv, "--url")
    if not urls or urls[0] not in folders:
        return None
    folder = folders[urls[0]]
    dest = Path(_option(argv, "--dest")[0])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(folder, target_is_directory=True)
    revision = (_option(argv, "--revision") or [""])[0]
    results: dict[str, str] = {}
    for spec in _option(argv, "--result"):
        name, _, path = spec.partition("=")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(revision, encoding="utf-8")
        results[name] = revision
    return results
