"""Git URL and ref validation, credential scrubbing and a locked-down git environment.

Shared by the clone stage, the compiler and the operator: a Git URL or ref that
reaches `git` comes from a user's YAML or a webhook, so it is checked here
first. Only https, ssh and scp-form (`user@host:path`) URLs are accepted;
git's remote helpers (`ext::`, `fd::`), local paths and `file://`, and hosts on
loopback, link-local or private networks are refused unless
`controller.settings.allow_local_git()` admits them (development and tests).

Hosts are normalised the way git and curl will read them before they are checked
(issue 16): a `%` in a host is refused (git decodes `%31%32%37.0.0.1` to a
loopback address), names go through IDNA (`１２７.０.０.１` is `127.0.0.1`),
trailing dots are dropped, and every IPv4 spelling getaddrinfo accepts (`127.1`,
`0x7f.1`, `2130706433`, octal) and IPv6 forms that carry an IPv4 address
(mapped, compatible, NAT64, 6to4, Teredo) are read as the address they reach.
Cluster-internal names (`*.svc`, `*.cluster.local`, `*.internal`,
`kubernetes.default`) and single-label names (resolved through the pod's DNS
search path, i.e. inside the cluster) are refused unless
`controller.settings.allow_cluster_git_hosts()` admits them.

Host names are checked as written, without DNS (the compiler must stay pure):
a public name that resolves to a private address is not caught here; network
policy on the cluster is the defence for that.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from controller import settings

REMOTE_SCHEMES = ("https", "ssh")
LOCAL_SCHEMES = ("http", "git", "file")  # only with allow_local_git()
_SCP_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._~-]+)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.*)$"
)
_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")  # git's `<transport>::<address>` remote helpers
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "metadata",
        "metadata.google.internal",
        "instance-data",  # AWS's instance metadata service by name
        "instance-data.ec2.internal",
    }
)
_CLUSTER_SUFFIXES = (".svc", ".cluster.local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")
_CLUSTER_NAMES = frozenset({"kubernetes", "kubernetes.default", "kubernetes.default.svc"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")  # not globally reachable (RFC 6890)
_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
MAX_REF_LENGTH = 255
MAX_URL_LENGTH = 2048
# A path that can never exist (a child of the null device): git reads it as an empty config and has
# no hooks there; unlike /dev/null itself it stays safe on hosts where /dev/null was replaced by a file.
NO_FILE = os.path.join(os.devnull, "sluice-none")


class GitSafetyError(ValueError):
    """A Git URL or ref that Sluice refuses to pass to git."""


@dataclass(frozen=True)
class GitURL:
    """A validated URL: `kind` is https, ssh, scp, or (local only) http, git, file, path."""

    url: str
    kind: str
    host: str  # "" for file:// and local paths
    path: str

    @property
    def repo_name(self) -> str:
        """`org/repo.git` -> `repo`: FuseML's codeset name."""
        parts = [p for p in self.path.strip("/").split("/") if p]
        last = parts[-1] if parts else ""
        return last[:-4] if last.endswith(".git") else last

    @property
    def project(self) -> str:
        """`org/repo.git` -> `org`: FuseML's codeset project."""
        parts = [p for p in self.path.strip("/").split("/") if p]
        return parts[-2] if len(parts) >= 2 else ""


def normalise_host(host: str) -> str:
    """The host git and curl will connect to, in the form the checks compare: lower case, no
    brackets or trailing dots, IDNA-encoded (so full-width digits and dots become ASCII).
    Raises `GitSafetyError` for a host that could be read differently by git than here."""
    if "%" in host:
        raise GitSafetyError("Git host must not contain '%' (percent-encoded or zone-id hosts are refused)")
    if "\\" in host or "@" in host or "/" in host:
        raise GitSafetyError("Git host contains a character that is not allowed")
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        return name[1:-1].lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise GitSafetyError("Git host is not a valid internationalised domain name") from None
    name = name.rstrip(".").lower()
    if not re.fullmatch(r"[a-z0-9._-]+|[0-9a-f:.]+", name):
        raise GitSafetyError("Git host contains a character that is not allowed")
    return name


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name is, if it is one (in any spelling getaddrinfo accepts)."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        # git resolves with getaddrinfo, which accepts `127.1`, `0x7f.0.0.1` and `2130706433`
        if not re.fullmatch(r"[0-9a-fx.]+", name):
            return None
        try:
            address = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        carrier = address in _NAT64 or address in _NAT64_LOCAL or address in _IPV4_COMPATIBLE
        low = int(address) & 0xFFFFFFFF
        if embedded is None and carrier and low and not address.is_loopback and not address.is_unspecified:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded
    return address


def _host_is_local(host: str) -> bool:
    """Loopback, private, link-local, unspecified or reserved addresses, and local names."""
    name = normalise_host(host)
    if not name or name in _BLOCKED_NAMES or name.endswith(".localhost"):
        return True
    if name.endswith(".local") and not name.endswith(".cluster.local"):  # mDNS; cluster names below
        return True
    address = _address(name)
    if address is None:
        # a name whose last label is a number is read as an address by some resolvers and by no
        # public registry: refused rather than guessed
        return bool(re.fullmatch(r"(?:.*\.)?(?:0x[0-9a-f]*|[0-9]+)", name))
    return bool(
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
        # everything else that is not globally routable: shared address space 100.64.0.0/10
        # (Alibaba's metadata service is 100.100.100.200), 192.0.0.0/24 (Oracle's is 192.0.0.192),
        # documentation and benchmarking ranges
        or not address.is_global
        or address in _IETF_PROTOCOL_ASSIGNMENTS  # is_global depends on the Python patch release here
    )


def _host_is_cluster(host: str) -> bool:
    """A cluster-internal name (`*.svc`, `*.internal`, `kubernetes.default`...) or a single-label
    name, which the pod's DNS search path turns into one."""
    name = normalise_host(host)
    if _address(name) is not None:
        return False
    return "." not in name or name in _CLUSTER_NAMES or name.endswith(_CLUSTER_SUFFIXES)


def _check_host(host: str, local: bool, cluster: bool) -> None:
    if _host_is_local(host) and not local:
        raise GitSafetyError("Git host is local or private (set SLUICE_ALLOW_LOCAL_GIT=1 to allow)")
    if _host_is_cluster(host) and not (local or cluster):
        raise GitSafetyError(
            "Git host is cluster-internal or a single-label name (the operator's"
            " SLUICE_ALLOW_CLUSTER_GIT_HOSTS=1 allows it)"
        )


def validate_url(url: str, *, allow_local: bool | None = None, allow_cluster: bool | None = None) -> GitURL:
    """Check a repository URL; raise `GitSafetyError` with a message that never echoes credentials."""
    local = settings.allow_local_git() if allow_local is None else allow_local
    cluster = settings.allow_cluster_git_hosts() if allow_cluster is None else allow_cluster
    if not isinstance(url, str) or not url:
        raise GitSafetyError("a Git URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise GitSafetyError(f"Git URL longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_RE.search(url) or " " in url:
        raise GitSafetyError("Git URL contains whitespace or control characters")
    if url.startswith("-"):
        raise GitSafetyError("Git URL must not start with '-'")
    if "$" in url or "`" in url:
        raise GitSafetyError("Git URL must not contain '$' or '`' (no variables or substitutions)")
    scheme_match = _SCHEME_RE.match(url)
    if scheme_match is None and _HELPER_RE.match(url):
        raise GitSafetyError("git remote helpers such as 'ext::' and 'fd::' are not allowed")
    if scheme_match is not None:
        return _validate_scheme_url(url, scheme_match.group("scheme").lower(), local, cluster)
    scp = _SCP_RE.match(url)
    if scp is not None and "/" not in url.split(":", 1)[0]:
        host, path = scp.group("host"), scp.group("path")
        if not path or path.startswith("-"):
            raise GitSafetyError("scp-form Git URL needs a repository path after ':'")
        _check_host(host, local, cluster)
        return GitURL(url, "scp", host, path)
    if local and url.startswith("/"):
        return GitURL(url, "path", "", url)
    raise GitSafetyError(
        "unsupported Git URL: use https://HOST/PATH, ssh://[USER@]HOST/PATH or USER@HOST:PATH"
        + ("" if local else " (local paths need SLUICE_ALLOW_LOCAL_GIT=1)")
    )


def _validate_scheme_url(url: str, scheme: str, local: bool, cluster: bool) -> GitURL:
    allowed = REMOTE_SCHEMES + (LOCAL_SCHEMES if local else ())
    if scheme not in allowed:
        hint = " (set SLUICE_ALLOW_LOCAL_GIT=1 for local development)" if scheme in LOCAL_SCHEMES else ""
        raise GitSafetyError(f"Git URL scheme {scheme!r} is not allowed; use https or ssh{hint}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise GitSafetyError(f"malformed Git URL: {scrub(str(exc))}") from None
    del port
    if parts.password is not None:
        raise GitSafetyError("Git URL must not embed a password or token; reference a Secret instead")
    if scheme == "https" and parts.username:
        raise GitSafetyError("https Git URL must not embed credentials; reference a Secret instead")
    if parts.query or parts.fragment:
        raise GitSafetyError("Git URL must not have a query or fragment")
    # the host as written (urlsplit's `hostname` lower-cases but never decodes `%XX`, as git does)
    written = parts.netloc.rpartition("@")[2]
    host = written[: written.find("]") + 1] if written.startswith("[") else written.partition(":")[0]
    if scheme == "file":
        if host and host != "localhost":
            raise GitSafetyError("file:// Git URL must not name a host")
        if not parts.path.startswith("/"):
            raise GitSafetyError("file:// Git URL needs an absolute path")
        return GitURL(url, "file", "", parts.path)
    if not host:
        raise GitSafetyError("Git URL has no host")
    _check_host(host, local, cluster)
    if not parts.path.strip("/"):
        raise GitSafetyError("Git URL has no repository path")
    return GitURL(url, scheme, host, parts.path)


def is_commit_sha(ref: str) -> bool:
    return bool(_SHA_RE.match(ref))


def validate_ref(ref: str) -> str:
    """A commit SHA, branch or tag name that is safe as a git argument (git check-ref-format rules)."""
    if not isinstance(ref, str) or not ref:
        raise GitSafetyError("a Git revision is required")
    if len(ref) > MAX_REF_LENGTH:
        raise GitSafetyError(f"Git revision longer than {MAX_REF_LENGTH} characters")
    if ref.startswith("-"):
        raise GitSafetyError("Git revision must not start with '-'")
    if _CONTROL_RE.search(ref):
        raise GitSafetyError("Git revision contains control characters")
    if ".." in ref or "@{" in ref or "//" in ref:
        raise GitSafetyError("Git revision must not contain '..', '@{' or '//'")
    if _REF_FORBIDDEN.search(ref):
        raise GitSafetyError("Git revision contains a character git forbids (space, ~ ^ : ? * [ \\)")
    if ref.startswith("/") or ref.endswith("/") or ref.endswith(".") or ref.endswith(".lock") or ref == "@":
        raise GitSafetyError("Git revision is not a valid ref name")
    if "$" in ref or "`" in ref:
        raise GitSafetyError("Git revision must not contain '$' or '`'")
    if any(part.startswith(".") for part in ref.split("/")):
        raise GitSafetyError("Git revision components must not start with '.'")
    return ref


_URL_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_TOKEN_RES = (
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+"),
    re.compile(r"(?i)((?:password|passwd|token|secret)=)[^\s&]+"),
)


def scrub(text: str) -> str:
    """Remove credentials from URLs and well-known token formats in text such as git's stderr."""
    text = _URL_USERINFO_RE.sub(lambda m: f"{m.group('scheme')}***@", text)
    for pattern in _TOKEN_RES:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def git_env(
    base: Mapping[str, str] | None = None,
    *,
    allow_local: bool | None = None,
    askpass: str | None = None,
    ssh_command: str | None = None,
) -> dict[str, str]:
    """The environment for a git subprocess: no prompts, no system/global config, limited protocols.

    `base` defaults to a minimal copy of this process's environment (PATH, HOME, locale,
    TMPDIR); credentials reach git only through `askpass` (a program reading a mounted
    Secret) or `ssh_command`, never through argv.
    """
    local = settings.allow_local_git() if allow_local is None else allow_local
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in ("PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT")}
    env.setdefault("PATH", os.defpath)
    protocols = "https:ssh" + (":http:git:file" if local else "")
    config = [
        ("protocol.allow", "never"),
        ("core.hooksPath", NO_FILE),
        ("core.fsmonitor", "false"),
        ("submodule.recurse", "false"),
        ("fetch.recurseSubmodules", "false"),
        ("credential.helper", ""),
        ("advice.detachedHead", "false"),
        ("init.defaultBranch", "main"),
    ]
    for name in protocols.split(":"):
        config.append((f"protocol.{name}.allow", "always"))
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": NO_FILE,
            "GIT_ALLOW_PROTOCOL": protocols,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_LFS_SKIP_SMUDGE": "1",
            "LC_ALL": "C",
            "GIT_CONFIG_COUNT": str(len(config)),
            "GIT_SSH_COMMAND": ssh_command or "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
        }
    )
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    if askpass:
        env["GIT_ASKPASS"] = askpass
        env["SSH_ASKPASS"] = askpass
    else:
        env["GIT_ASKPASS"] = "/bin/false" if os.path.exists("/bin/false") else "false"
    return env
