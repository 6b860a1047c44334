"""Shared helpers for the workflow-language tests: building documents and reading their errors."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.spec import Diagnostic, SpecError, load_workflow_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "workflows").glob("*.yaml"))

# Every native document in the tables starts with these three lines, so its body starts on line 4.
HEAD = "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {name: demo}\n"


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a parsed document (keys and list indexes), depth first, `()` (itself) first."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += json_paths(value, (*prefix, index))
    return found


def native(body: str) -> str:
    """A native workflow: HEAD (lines 1-3) then `body` (dedented, from line 4)."""
    return HEAD + textwrap.dedent(body).lstrip("\n")


def text(body: str) -> str:
    """A document given in full (dedented), e.g. a FuseML workflow or broken YAML."""
    return textwrap.dedent(body).lstrip("\n")


def diagnostics(document: str, file: str = "wf.yaml") -> list[Diagnostic]:
    """The diagnostics of an invalid document; fails the test if it loads."""
    try:
        workflow = load_workflow_text(document, file)
    except SpecError as exc:
        return exc.diagnostics
    raise AssertionError(f"expected a SpecError, got a valid workflow {workflow.name!r}")


@dataclass(frozen=True)
class Case:
    """One invalid document and the error it must produce."""

    id: str
    document: str
    code: str
    line: int
    path: str
    fragment: str  # a piece of the message
    col: int | None = None
    also: tuple[str, ...] = ()  # other error codes the same document legitimately reports
