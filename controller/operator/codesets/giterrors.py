"""What a failed git call means: its Codeset condition reason, metric kind and a scrubbed line."""

from __future__ import annotations

from collections.abc import Sequence

from controller import gitsafe
from controller.api.conditions import AUTHENTICATION_FAILED, FETCH_FAILED


class GitError(Exception):
    """A failed git call: `reason` for the Codeset condition, `kind` for metrics, scrubbed `message`."""

    def __init__(self, reason: str, kind: str, message: str):
        self.reason = reason
        self.kind = kind
        self.message = message
        super().__init__(message)


_AUTH_HINTS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied (publickey",
    "access denied",
    "returned error: 401",
    "returned error: 403",
    "invalid username or password",
    "host key verification failed",
)
_UNREACHABLE_HINTS = (
    "could not resolve host",
    "connection refused",
    "failed to connect",
    "couldn't connect",
    "connection timed out",
    "unable to connect",
    "connection reset",
    "unable to look up",
    "empty reply from server",
    "the remote end hung up",
)
# what a port that is open but speaks no Git over HTTP(S)/SSH makes git and curl say
_TRANSPORT_HINTS = (
    "ssl",
    "tls",
    "gnutls",
    "rpc failed",
    "http/2",
    "unexpected disconnect",
    "protocol error",
    "bad line length",
    "invalid server response",
    "weird server reply",
    "received http code",
    "the requested url returned error",
    "unable to access",  # any other curl error
    "http/0.9",
    "kex_exchange_identification",
    "connection closed",
    "closed by remote host",
    "recv failure",
    "send failure",
    "no route to host",
    "network is unreachable",
)
UNREACHABLE_MESSAGE = "cannot reach the Git repository (connection failed)"
_NOT_FOUND_HINTS = ("not found", "does not appear to be a git repository", "returned error: 404")


def classify(stderr: str, secrets: Sequence[str] = ()) -> tuple[str, str, str]:
    """(reason, metric kind, one scrubbed line) for git's stderr."""
    text = scrub(stderr, secrets)
    lower = text.lower()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if line.lower().startswith(("fatal:", "error:", "remote:"))]
    line = (fatal or lines or ["git failed without a message"])[-1][:300]
    if any(hint in lower for hint in _AUTH_HINTS):
        return AUTHENTICATION_FAILED, "auth", line
    # one message whatever went wrong on the way (refused, reset, hung up, not TLS, not Git): the
    # Codeset status must not tell an open port from a closed one (issue 16)
    if any(hint in lower for hint in _UNREACHABLE_HINTS):
        return FETCH_FAILED, "unreachable", UNREACHABLE_MESSAGE
    if any(hint in lower for hint in _NOT_FOUND_HINTS):
        return FETCH_FAILED, "not_found", line
    if any(hint in lower for hint in _TRANSPORT_HINTS):
        return FETCH_FAILED, "unreachable", UNREACHABLE_MESSAGE
    return FETCH_FAILED, "other", line


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """gitsafe's scrubbing plus the exact values of this call's Secret."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return gitsafe.scrub(text)
