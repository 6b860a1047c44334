"""The Codeset resource: its limits, its OpenAPI schema and its parser, from one set of constants.

The CRD's schema (checked by the API server on admission) and `parse_codeset` (checked by the
operator on every event, also for objects admitted before a CRD change) are both built from the
constants below, so they refuse the same things. The parser goes further where a regular expression
cannot: it reuses `controller.gitsafe` for the URL and ref, so the operator refuses exactly what
the compiler and the clone stage refuse, and compiles the `ignore` patterns.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pathspec

from controller import gitsafe
from controller.api.openapi import conditions_schema, object_schema, secret_ref_schema, time_schema
from controller.units import parse_duration

# --- limits and patterns (shared by the schema and the parser) ---
MAX_URL_LENGTH = gitsafe.MAX_URL_LENGTH
MAX_REF_LENGTH = gitsafe.MAX_REF_LENGTH
MAX_INTERVAL_LENGTH = 32
MAX_SYNC_PATH_LENGTH = 1024
MAX_IGNORE_PATTERNS = 256
MAX_PATTERN_LENGTH = 512
DEFAULT_INTERVAL = "1m"
DEFAULT_INTERVAL_SECONDS = 60

# A Go-style duration of at least one second: a non-zero h, m or s component, no sub-second units.
INTERVAL_PATTERN = (
    r"^((([0-9]+h)?([0-9]+m)?0*[1-9][0-9]*s)|(([0-9]+h)?0*[1-9][0-9]*m([0-9]+s)?)"
    r"|(0*[1-9][0-9]*h([0-9]+m)?([0-9]+s)?))$"
)
# Git URLs Sluice accepts: http(s), ssh, git, file (refused at run time without SLUICE_ALLOW_LOCAL_GIT),
# or scp-like `user@host:path`.
URL_PATTERN = r"^((https?|ssh|git|file)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$"
REF_NAME_PATTERN = r"^[^\s~^:?*\[\\]+$"
# full SHA-1 or SHA-256 object names: a short SHA cannot be fetched by commit
COMMIT_PATTERN = r"^([0-9a-f]{40}|[0-9a-f]{64})$"
# A relative path inside a repository: no leading '/', no '..' segments.
PATH_PATTERN = r"^(\.|(\./)?\.?[A-Za-z0-9_-][A-Za-z0-9._-]*(/\.?[A-Za-z0-9_-][A-Za-z0-9._-]*)*)/?$"

RefKind = Literal["head", "branch", "tag", "commit"]


def codeset_schema() -> dict[str, Any]:
    """The `openAPIV3Schema` of the Codeset CRD."""
    ref_name = {"type": "string", "maxLength": MAX_REF_LENGTH, "pattern": REF_NAME_PATTERN}
    spec = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "maxLength": MAX_URL_LENGTH,
                "pattern": URL_PATTERN,
                "description": "Git repository URL (https, ssh, git, or user@host:path).",
            },
            "ref": {
                "type": "object",
                "maxProperties": 1,
                "description": "What to track: one of branch, tag or commit (default: the remote's HEAD).",
                "properties": {
                    "branch": {**ref_name, "description": "A branch name."},
                    "tag": {**ref_name, "description": "A tag name."},
                    "commit": {
                        "type": "string",
                        "pattern": COMMIT_PATTERN,
                        "description": "A full commit SHA.",
                    },
                },
            },
            "interval": {
                "type": "string",
                "maxLength": MAX_INTERVAL_LENGTH,
                "pattern": INTERVAL_PATTERN,
                "default": DEFAULT_INTERVAL,
                "description": "How often to poll with `git ls-remote`, e.g. 30s, 5m, 1h (at least 1s).",
            },
            "secretRef": secret_ref_schema(
                "Git credentials: keys username+password, or token, or identity+known_hosts."
            ),
            "webhook": {
                "type": "object",
                "description": "Signed push webhooks (GitHub, GitLab, Gitea) that trigger a fetch at once.",
                "properties": {"secretRef": secret_ref_schema("The webhook secret (key token).")},
            },
            "sync": {
                "type": "object",
                "description": "Apply the workflow YAMLs found in this folder of the repository.",
                "required": ["path"],
                "properties": {
                    "path": {
                        "type": "string",
                        "maxLength": MAX_SYNC_PATH_LENGTH,
                        "pattern": PATH_PATTERN,
                        "description": "A relative folder path inside the repository.",
                    }
                },
            },
            "ignore": {
                "type": "array",
                "maxItems": MAX_IGNORE_PATTERNS,
                "description": "gitignore-style path patterns excluded from sync and change detection: "
                "commits touching only these start no runs.",
                "items": {"type": "string", "maxLength": MAX_PATTERN_LENGTH},
            },
        },
    }
    status = {
        "type": "object",
        "properties": {
            "revision": {"type": "string", "description": "The latest fetched commit SHA."},
            "lastFetchedAt": time_schema("When the remote was last checked."),
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": conditions_schema(),
            "webhookPath": {
                "type": "string",
                "description": "Where the operator receives this Codeset's webhooks.",
            },
            "contentDigest": {
                "type": "string",
                "description": "Digest of the tracked content (after ignore).",
            },
            "lastHandledReconcileAt": {
                "type": "string",
                "description": "The last sluice.dev/reconcile-requested-at value acted on.",
            },
            "syncedWorkflows": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Workflows applied from sync.path at this revision.",
            },
        },
    }
    return object_schema(spec, status)


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
    if len(raw) > MAX_SYNC_PATH_LENGTH:
        raise InvalidCodeset("$.spec.sync.path", f"longer than {MAX_SYNC_PATH_LENGTH} characters")
    if "\\" in raw or "\x00" in raw:
        raise InvalidCodeset("$.spec.sync.path", "must be a POSIX path")
    if raw.startswith("/"):
        raise InvalidCodeset("$.spec.sync.path", "must be relative to the repository root")
    if any(part == ".." for part in raw.split("/")):
        raise InvalidCodeset("$.spec.sync.path", "must stay inside the repository (no '..')")
    path = posixpath.normpath(raw or ".")
    return "" if path == "." else path


def _interval_of(spec: Mapping[str, Any]) -> int:
    if spec.get("interval") is None:
        return DEFAULT_INTERVAL_SECONDS
    text = str(spec["interval"])
    if len(text) > MAX_INTERVAL_LENGTH:
        raise InvalidCodeset("$.spec.interval", f"longer than {MAX_INTERVAL_LENGTH} characters")
    try:
        return int(parse_duration(text, minimum=1))
    except ValueError as exc:
        raise InvalidCodeset("$.spec.interval", str(exc)) from None


def _ignore_of(spec: Mapping[str, Any]) -> tuple[str, ...]:
    raw = spec.get("ignore") or []
    if isinstance(raw, str):  # Flux writes `ignore` as one multi-line string
        raw = raw.splitlines()
    if not isinstance(raw, list) or len(raw) > MAX_IGNORE_PATTERNS:
        raise InvalidCodeset("$.spec.ignore", f"a list of at most {MAX_IGNORE_PATTERNS} path patterns")
    ignore: list[str] = []
    for index, pattern in enumerate(raw):
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            raise InvalidCodeset(
                f"$.spec.ignore[{index}]", f"a path pattern string of at most {MAX_PATTERN_LENGTH} characters"
            )
        if pattern.strip() and not pattern.lstrip().startswith("#"):
            ignore.append(pattern.strip())
    try:
        pathspec.GitIgnoreSpec.from_lines(ignore)
    except Exception as exc:  # pathspec raises several types for a malformed pattern
        raise InvalidCodeset("$.spec.ignore", f"not a gitignore-style pattern: {exc}") from None
    return tuple(ignore)


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
    interval = _interval_of(spec)
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
    ignore = _ignore_of(spec)
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
        ignore=ignore,
    )
