"""Secrets for local runs: `$SLUICE_HOME/secrets.yaml` (`{secret: {key: value}}`) or the environment.

`SLUICE_SECRET_<NAME>_<KEY>` (name and key upper-cased, other characters as `_`) wins over the
file. Values are handed to steps only; the executor never writes them to logs or run files, and
redacts them from step output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


class SecretError(ValueError):
    """A secret or key a step needs is not available locally."""


def env_name(secret: str, key: str) -> str:
    return "SLUICE_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{secret}_{key}".upper())


def _read(path: Path) -> Any:
    """The secrets file through the hardened loader: size and depth capped, no aliases or tags."""
    from controller.spec.yamlload import YamlError, decode, parse_yaml, read_limited

    try:
        return parse_yaml(decode(read_limited(str(path)), str(path)), str(path)).value
    except YamlError as exc:
        if exc.diagnostic.code == "yaml.empty":
            return {}
        raise SecretError(exc.diagnostic.format()) from None


class LocalSecrets:
    def __init__(self, home: Path):
        self.path = home / "secrets.yaml"
        self._file: dict[str, dict[str, str]] | None = None
        self.used: set[str] = set()  # values handed out, redacted from every log

    def _load(self) -> dict[str, dict[str, str]]:
        if self._file is None:
            self._file = {}
            if self.path.is_file():
                data = _read(self.path)
                if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                    raise SecretError(f"{self.path}: expected {{secret-name: {{key: value}}}}")
                self._file = {str(k): {str(kk): str(vv) for kk, vv in v.items()} for k, v in data.items()}
        return self._file

    def get(self, secret: str, key: str) -> str | None:
        value = os.environ.get(env_name(secret, key))
        if value is None:
            value = self._load().get(secret, {}).get(key)
        if value is not None:
            self.used.add(value)
        return value

    def keys(self, secret: str) -> dict[str, str]:
        """Every key of one secret (for a Secret-backed workspace); env-given keys are lower-cased."""
        prefix = env_name(secret, "")
        found = dict(self._load().get(secret, {}))
        for name, value in os.environ.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                found[name[len(prefix) :].lower()] = value
        self.used.update(found.values())
        return found

    def require(self, secret: str, key: str, optional: bool, where: str) -> str | None:
        value = self.get(secret, key)
        if value is None and not optional:
            raise SecretError(
                f"{where}: secret {secret!r} key {key!r} not found; set {env_name(secret, key)} "
                f"or add it to {self.path}"
            )
        return value
