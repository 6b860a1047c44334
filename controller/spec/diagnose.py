"""Collecting diagnostics while reading one document."""

from __future__ import annotations

from collections.abc import Mapping

from controller.spec.errors import Diagnostic


class Collector:
    """Turns (JSON path, code, message) into positioned diagnostics for one file."""

    def __init__(self, file: str, positions: Mapping[str, tuple[int, int]]):
        self.file = file
        self.positions = positions
        self.diagnostics: list[Diagnostic] = []

    def position(self, path: str) -> tuple[int, int]:
        while path:
            if path in self.positions:
                return self.positions[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return (0, 0)

    def error(self, path: str, code: str, message: str) -> None:
        line, col = self.position(path)
        self.diagnostics.append(Diagnostic(self.file, line, col, path, code, message))

    @property
    def failed(self) -> bool:
        return bool(self.diagnostics)
