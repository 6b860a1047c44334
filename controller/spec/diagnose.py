"""Collecting diagnostics while reading one document."""

from __future__ import annotations

from collections.abc import Mapping

from controller.spec.errors import Diagnostic, closest_position


class Collector:
    """Turns (JSON path, code, message) into positioned diagnostics for one file."""

    def __init__(self, file: str, positions: Mapping[str, tuple[int, int]]):
        self.file = file
        self.positions = positions
        self.diagnostics: list[Diagnostic] = []

    def error(self, path: str, code: str, message: str) -> None:
        line, col = closest_position(self.positions, path)
        self.diagnostics.append(Diagnostic(self.file, line, col, path, code, message))

    @property
    def failed(self) -> bool:
        return bool(self.diagnostics)
