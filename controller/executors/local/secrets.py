"""Secrets for local runs: `$SLUICE_HOME/secrets.yaml` (`{secret: {key: value}}`) or the environment.

`SLUICE_SECRET_<NAME>_<KEY>` (name and key upper-cased, other characters as `_`) wins over the
file. Values are handed to steps only; the executor never writes them to logs or run files, and
redacts them from step output (`Redactor`: the whole value, each line of a multi-line value, and
their base64 (also wrapped at 76 or 64 columns), URL and hex encodings), from results and from cache
entries.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus


class SecretError(ValueError):
    """A secret or key a step needs is not available locally."""


def env_name(secret: str, key: str) -> str:
    return "SLUICE_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{secret}_{key}".upper())


MASK = "***"
MIN_PIECE = 6  # a line of a multi-line secret shorter than this is not redacted on its own


def _encodings(value: str) -> set[str]:
    """The forms a step is likely to print `value` in: as is, base64 (standard and URL-safe; the
    part that is the same wherever the value ends, so `echo "$S" | base64` is caught too), URL
    encoding, hex."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value), raw.hex(), raw.hex().upper()}
    stable = (len(raw) // 3) * 4  # base64 characters fixed by the value alone, whatever follows it
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms.add(whole)
        forms.add(whole.rstrip("="))
        if stable >= 8:
            forms.add(whole[:stable])
        forms |= _wrapped_lines(whole, stable)
    return {f for f in forms if f}


WRAP_WIDTHS = (76, 64)  # coreutils `base64` and MIME wrap at 76 columns; `openssl base64` and PEM at 64


def _wrapped_lines(encoded: str, stable: int) -> set[str]:
    """The lines a wrapping encoder prints a long value's base64 as, each redacted on its own
    (step output is redacted line by line): every full line inside the part fixed by the value, and
    the start of the line where that part ends."""
    lines: set[str] = set()
    for width in WRAP_WIDTHS:
        if stable <= width:
            continue
        for start in range(0, stable, width):
            piece = encoded[start : min(start + width, stable)]
            if len(piece) >= 8:
                lines.add(piece)
    return lines


class Redactor:
    """Finds and masks secret values in text: each whole value (also without surrounding
    whitespace, so one ending in a newline is caught), each line of a multi-line value (an SSH key
    printed line by line), and their common encodings."""

    def __init__(self, values: list[str] | set[str]):
        patterns: set[str] = set()
        for value in values:
            if not value:
                continue
            for form in {value, value.strip()}:
                if form:
                    patterns |= _encodings(form)
            for line in value.splitlines():
                line = line.strip()
                if len(line) >= MIN_PIECE:
                    patterns |= _encodings(line)
        self.patterns = sorted(patterns, key=len, reverse=True)
        self._regex = re.compile("|".join(re.escape(p) for p in self.patterns)) if self.patterns else None

    def __bool__(self) -> bool:
        return self._regex is not None

    def redact(self, text: str) -> str:
        return self._regex.sub(MASK, text) if self._regex is not None else text

    def found_in(self, text: str) -> bool:
        return self._regex is not None and self._regex.search(text) is not None


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
    """Secret values by name and key: the environment, then the secrets file, then the Secret
    documents of the input (`documents`, decoded; what `kubectl apply` would have created)."""

    def __init__(self, home: Path, documents: dict[str, dict[str, str]] | None = None):
        self.path = home / "secrets.yaml"
        self._file: dict[str, dict[str, str]] | None = None
        self.documents = documents or {}
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
        if value is None:
            value = self.documents.get(secret, {}).get(key)
        if value is not None:
            self.used.add(value)
        return value

    def keys(self, secret: str) -> dict[str, str]:
        """Every key of one secret (for a Secret-backed workspace); env-given keys are lower-cased."""
        prefix = env_name(secret, "")
        found = {**self.documents.get(secret, {}), **self._load().get(secret, {})}
        for name, value in os.environ.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                found[name[len(prefix) :].lower()] = value
        self.used.update(found.values())
        return found

    def known_values(self) -> list[str]:
        """Every value the secrets file holds and every `SLUICE_SECRET_*` variable: what a reader of
        logs written earlier (`sluice logs`) redacts, whichever of them the run used."""
        found = [v for keys in self._load().values() for v in keys.values()]
        return found + [v for k, v in os.environ.items() if k.startswith("SLUICE_SECRET_")]

    def require(self, secret: str, key: str, optional: bool, where: str) -> str | None:
        value = self.get(secret, key)
        if value is None and not optional:
            raise SecretError(
                f"{where}: secret {secret!r} key {key!r} not found; set {env_name(secret, key)} "
                f"or add it to {self.path}"
            )
        return value
