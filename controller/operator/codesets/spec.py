"""A Codeset object from the API -> a validated `CodesetSpec` (or one clear error message).

Validation reuses `controller.gitsafe` for the URL and ref, so the operator refuses exactly what the
compiler and the clone stage refuse.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pathspec

from controller import gitsafe
from controller.units import parse_duration

RefKind = Literal["head", "branch", "tag", "commit"]
DEFAULT_INTERVAL_SECONDS = 60
MAX_IGNORE_PATTERNS = 256
MAX_PATTERN_LENGTH = 512


class InvalidCodeset(ValueError):
    """A Codeset spec that cannot work as written: `$.spec.path: message`."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class GitRef:
    kind: RefKind
    name: str

    @property
    def full_name(self) -> str:
        """The ref as `git ls-remote` lists it (a commit is its own name)."""
        if self.kind == "branch":
            return f"refs/heads/{self.name}"
        if self.kind == "tag":
            return f"refs/tags/{self.name}"
        if self.kind == "head":
            return "HEAD"
        return self.name


@dataclass(frozen=True)
class CodesetSpec:
    namespace: str
    name: str
    uid: str
    generation: int
    url: str
    ref: GitRef
    interval_seconds: int
    secret_name: str | None
    webhook_secret_name: str | None
    sync_path: str | None  # normalised, relative to the repository root ("" = the root)
    ignore: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def webhook_path(self) -> str | None:
        return webhook_path(self.namespace, self.name) if self.webhook_secret_name else None


def webhook_path(namespace: str, name: str) -> str:
    return f"/hooks/{namespace}/{name}"


def _ref_of(spec: Mapping[str, Any]) -> GitRef:
    raw = spec.get("ref")
    if raw is None or raw == {}:
        return GitRef("head", "HEAD")  # the remote's default branch
    if not isinstance(raw, Mapping):
        raise InvalidCodeset("$.spec.ref", "give one of branch, tag or commit")
    kinds: tuple[RefKind, ...] = ("branch", "tag", "commit")
    given = [(k, raw[k]) for k in kinds if raw.get(k)]
    if len(given) != 1:
        raise InvalidCodeset("$.spec.ref", "give exactly one of branch, tag or commit")
    kind, value = given[0]
    if not isinstance(value, str):
        raise InvalidCodeset(f"$.spec.ref.{kind}", "must be a string")
    try:
        gitsafe.validate_ref(value)
    except gitsafe.GitSafetyError as exc:
        raise InvalidCodeset(f"$.spec.ref.{kind}", str(exc)) from None
    if kind == "commit" and not gitsafe.is_commit_sha(value):
        raise InvalidCodeset("$.spec.ref.commit", "must be a full 40-character commit SHA")
    return GitRef(kind, value)


def normalise_sync_path(raw: Any) -> str:
    """A folder inside the repository: relative, no `..`, no absolute path."""
    if not isinstance(raw, str):
        raise InvalidCodeset("$.spec.sync.path", "must be a string")
    if "\\" in raw or "\x00" in raw:
        raise InvalidCodeset("$.spec.sync.path", "must be a POSIX path")
    if raw.startswith("/"):
        raise InvalidCodeset("$.spec.sync.path", "must be relative to the repository root")
    if any(part == ".." for part in raw.split("/")):
        raise InvalidCodeset("$.spec.sync.path", "must stay inside the repository (no '..')")
    path = posixpath.normpath(raw or ".")
    return "" if path == "." else path


def _name(spec: Mapping[str, Any], field: str, where: str = "$.spec") -> str | None:
    ref = spec.get(field)
    if ref is None:
        return None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidCodeset(f"{where}.{field}.name", "name a Secret in the Codeset's namespace")
    return name


def parse_codeset(body: Mapping[str, Any]) -> CodesetSpec:
    """Raise `InvalidCodeset` for anything Sluice refuses; never echo a credential."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise InvalidCodeset("$.spec", "must be a mapping")
    url = spec.get("url")
    if not isinstance(url, str):
        raise InvalidCodeset("$.spec.url", "a Git URL is required")
    try:
        gitsafe.validate_url(url)
    except gitsafe.GitSafetyError as exc:
        raise InvalidCodeset("$.spec.url", gitsafe.scrub(str(exc))) from None
    interval = DEFAULT_INTERVAL_SECONDS
    if spec.get("interval") is not None:
        try:
            interval = int(parse_duration(str(spec["interval"]), minimum=1))
        except ValueError as exc:
            raise InvalidCodeset("$.spec.interval", str(exc)) from None
    webhook = spec.get("webhook")
    webhook_secret = _name(webhook, "secretRef", "$.spec.webhook") if isinstance(webhook, Mapping) else None
    if webhook is not None and not isinstance(webhook, Mapping):
        raise InvalidCodeset("$.spec.webhook", "must be a mapping with secretRef.name")
    sync = spec.get("sync")
    sync_path: str | None = None
    if sync is not None:
        if not isinstance(sync, Mapping):
            raise InvalidCodeset("$.spec.sync", "must be a mapping with a path")
        sync_path = normalise_sync_path(sync.get("path", ""))
    ignore_raw = spec.get("ignore") or []
    if isinstance(ignore_raw, str):  # Flux writes `ignore` as one multi-line string
        ignore_raw = ignore_raw.splitlines()
    if not isinstance(ignore_raw, list) or len(ignore_raw) > MAX_IGNORE_PATTERNS:
        raise InvalidCodeset("$.spec.ignore", f"a list of at most {MAX_IGNORE_PATTERNS} path patterns")
    ignore: list[str] = []
    for index, pattern in enumerate(ignore_raw):
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            raise InvalidCodeset(f"$.spec.ignore[{index}]", "a path pattern string")
        if pattern.strip() and not pattern.lstrip().startswith("#"):
            ignore.append(pattern.strip())
    try:
        pathspec.GitIgnoreSpec.from_lines(ignore)
    except Exception as exc:  # pathspec raises several types for a malformed pattern
        raise InvalidCodeset("$.spec.ignore", f"not a gitignore-style pattern: {exc}") from None
    return CodesetSpec(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        generation=int(meta.get("generation") or 1),
        url=url,
        ref=_ref_of(spec),
        interval_seconds=interval,
        secret_name=_name(spec, "secretRef"),
        webhook_secret_name=webhook_secret,
        sync_path=sync_path,
        ignore=tuple(ignore),
    )


@dataclass(frozen=True)
class Source:
    """What one shared poll is about: a repository, a ref and whose credentials read it.

    Codesets without credentials share polls across namespaces; with a Secret, only Codesets in the
    same namespace naming the same Secret share (a revision of a private repository must not reach a
    namespace that cannot read it).
    """

    url: str
    ref: GitRef
    namespace: str | None = None
    secret_name: str | None = None


def source_of(spec: CodesetSpec) -> Source:
    if spec.secret_name:
        return Source(spec.url, spec.ref, spec.namespace, spec.secret_name)
    return Source(spec.url, spec.ref)
