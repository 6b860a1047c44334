"""Where templates occur in a document, parsed with error collection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.spec.diagnose import Collector
from controller.spec.expressions import ExpressionError, parse_template, parse_when, walk_strings
from controller.spec.model import Literal_, Template, When


@dataclass(frozen=True)
class Site:
    """One template in the document: where it is, which step owns it, what it feeds."""

    path: str
    step: str | None
    template: Template
    expects: str | None = None  # a stage parameter or output type, when known


class TemplateReader:
    """Parses templates, recording every site and reporting malformed ones without stopping."""

    def __init__(self, out: Collector, *, fuseml: bool):
        self.out = out
        self.fuseml = fuseml
        self.sites: list[Site] = []

    def template(self, text: str, path: str, step: str | None, expects: str | None = None) -> Template:
        try:
            parsed = parse_template(text, fuseml=self.fuseml)
        except ExpressionError as exc:
            self.out.error(path, "expr.syntax", f"{exc.message} (at character {exc.offset + 1})")
            return Template(text, (Literal_(text),))
        if parsed.refs:
            self.sites.append(Site(path, step, parsed, expects))
        return parsed

    def nested(self, value: Any, path: str, step: str | None, expects: str | None = None) -> None:
        """Check every string inside a free-form value (such as a stage's `with:`)."""
        for sub_path, text in walk_strings(value, path):
            if "{{" in text:
                self.template(text, sub_path, step, expects if sub_path == path else None)

    def when(self, text: str, path: str, step: str) -> When | None:
        try:
            parsed = parse_when(text, fuseml=self.fuseml)
        except ExpressionError as exc:
            self.out.error(path, "when.syntax", f"{exc.message} (at character {exc.offset + 1})")
            return None
        for side in (parsed.left, *parsed.right):
            if side.refs:
                self.sites.append(Site(path, step, side, "when"))
        return parsed
