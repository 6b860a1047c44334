"""A Codeset's Git credentials: read from its Secret, handed to git only through its environment.

Credentials reach git only through a GIT_ASKPASS script that reads them from this call's
environment (or, for ssh, through an identity file in a private temporary folder): never argv,
never a log line.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller import gitsafe

ASKPASS_SCRIPT = """#!/bin/sh
# Sluice's GIT_ASKPASS: answers git's prompt from this process's environment, never from argv.
case "$1" in
  Username*|username*) printf '%s\\n' "$SLUICE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$SLUICE_GIT_PASSWORD" ;;
esac
"""
TOKEN_USERNAME = "x-access-token"  # accepted with a token as password by GitHub, GitLab and Gitea


@dataclass(frozen=True)
class Credentials:
    """What a Codeset's Secret holds; `repr` never shows a value."""

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    identity: bytes | None = field(default=None, repr=False)
    known_hosts: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, secret: Mapping[str, object]) -> Credentials:
        """From a Secret object as the API returns it (base64 `data`, or `stringData`)."""
        raw: dict[str, bytes] = {}
        data = secret.get("data")
        for key, value in (data if isinstance(data, Mapping) else {}).items():
            with contextlib.suppress(ValueError, TypeError):
                raw[str(key)] = base64.b64decode(str(value), validate=True)
        string_data = secret.get("stringData")
        if isinstance(string_data, Mapping):
            raw.update({str(k): str(v).encode() for k, v in string_data.items()})

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value.decode("utf-8", "replace").strip("\r\n") if value else None

        if raw.get("identity"):
            return cls(identity=raw["identity"], known_hosts=raw.get("known_hosts"))
        if text("token"):
            return cls(username=text("username") or TOKEN_USERNAME, password=text("token"))
        return cls(username=text("username"), password=text("password"))

    @property
    def empty(self) -> bool:
        return not (self.password or self.identity)

    def secret_values(self) -> list[str]:
        values = [self.password or ""]
        if self.identity:
            values.extend(
                line for line in self.identity.decode("utf-8", "replace").splitlines() if len(line) > 8
            )
        return [v for v in values if len(v) >= 4]


def _askpass_path() -> str:
    """One static askpass script per process (holds no secret), in a private folder."""
    folder = Path(tempfile.gettempdir()) / f"sluice-askpass-{os.getuid()}"
    script = folder / "askpass.sh"
    if not script.exists() or script.read_text() != ASKPASS_SCRIPT:
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        partial = folder / f".askpass.{os.getpid()}"
        partial.write_text(ASKPASS_SCRIPT)
        os.chmod(partial, stat.S_IRWXU)
        os.replace(partial, script)
    return str(script)


@contextlib.contextmanager
def credential_env(credentials: Credentials | None) -> Iterator[dict[str, str]]:
    """git's environment for one call; an ssh identity lives in a 0700 folder removed afterwards."""
    if credentials is None or credentials.empty:
        yield gitsafe.git_env()
        return
    if credentials.identity:
        with tempfile.TemporaryDirectory(prefix="sluice-ssh-") as folder:
            key = Path(folder) / "identity"
            key.touch(mode=0o600)
            key.write_bytes(credentials.identity)
            known = Path(folder) / "known_hosts"
            known.touch(mode=0o600)
            known.write_bytes(credentials.known_hosts or b"")
            ssh = (
                f"ssh -i {shlex.quote(str(key))} -o IdentitiesOnly=yes -o BatchMode=yes"
                f" -o StrictHostKeyChecking=yes -o UserKnownHostsFile={shlex.quote(str(known))}"
            )
            yield gitsafe.git_env(ssh_command=ssh)
        return
    env = gitsafe.git_env(askpass=_askpass_path())
    env["SLUICE_GIT_USERNAME"] = credentials.username or TOKEN_USERNAME
    env["SLUICE_GIT_PASSWORD"] = credentials.password or ""
    yield env
