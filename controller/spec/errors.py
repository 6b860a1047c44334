"""Diagnostics: every problem in a user's file, with where it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_ERRORS = 50  # errors reported per file; the rest are counted, not listed


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One error in a workflow file.

    `line`/`col` are 1-based; 0 when unknown. `path` is a JSON path such as
    `$.spec.steps[1].with.dataset` ("" for syntax errors, which have none).
    `code` is a stable error class (e.g. `yaml.duplicate-key`, `ref.unknown-step`).
    """

    file: str
    line: int
    col: int
    path: str
    code: str
    message: str

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SpecError(Exception):
    """Raised with every diagnostic found in one document."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.col, d.path, d.code))[:MAX_ERRORS]
        self.omitted = max(0, len(diagnostics) - MAX_ERRORS)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


def closest_position(positions: Mapping[str, tuple[int, int]], path: str) -> tuple[int, int]:
    """Line/column of a JSON path, or of its closest ancestor that has one; (0, 0) if none."""
    while path:
        if path in positions:
            return positions[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return (0, 0)


def shorten(value: Any, limit: int = 40) -> str:
    """A value quoted for an error message, never echoed in full."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    return repr(text) if len(text) <= limit else repr(text[: limit - 1] + "…")


def with_article(kind: str) -> str:
    """`a string`, `an integer`: a type name as a message says it."""
    return ("an " if kind[0] in "aeiou" else "a ") + kind
