"""Compile errors: every problem found, each pointing into the workflow file."""

from __future__ import annotations

from controller.spec.errors import Diagnostic
from controller.spec.model import Workflow


class CompileError(Exception):
    """Raised with every diagnostic found while compiling one workflow."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.col, d.path, d.code))
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class Problems:
    """Collects diagnostics for one workflow; `raise_if_any()` ends the compile with all of them."""

    def __init__(self, workflow: Workflow):
        self.workflow = workflow
        self.base = "$.spec" if workflow.dialect == "native" else "$"
        self.diagnostics: list[Diagnostic] = []
        self._step_index = {s.name: i for i, s in enumerate(workflow.steps)}

    def step_path(self, step_name: str, suffix: str = "") -> str:
        index = self._step_index.get(step_name)
        return self.base if index is None else f"{self.base}.steps[{index}]{suffix}"

    def input_path(self, input_name: str) -> str:
        index = next((i for i, s in enumerate(self.workflow.inputs) if s.name == input_name), None)
        return self.base if index is None else f"{self.base}.inputs[{index}]"

    def error(self, path: str, code: str, message: str, *, at: str | None = None) -> None:
        """Record an error at JSON `path`; `at` is the file path whose line/column to show, if different."""
        line, col = self.workflow.position(at or path)
        self.diagnostics.append(Diagnostic(self.workflow.source_file, line, col, path, code, message))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise CompileError(self.diagnostics)
