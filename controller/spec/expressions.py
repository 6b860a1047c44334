"""A real parser for `{{ ... }}` expressions and `when` conditions.

FuseML replaced references by string substitution and silently produced empty
strings for unknown ones; here every reference is parsed into a typed `Ref`
and every malformed one is an `ExpressionError` with its offset in the string.
"""

from __future__ import annotations

import re

from controller.spec.errors import shorten
from controller.spec.model import (
    ExtensionRef,
    InputRef,
    Literal_,
    OutputPathRef,
    Ref,
    StepOutputRef,
    Template,
    When,
    WhenOp,
)

NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_NAME_RE = re.compile(NAME + r"\Z")
INPUT_ATTRS = frozenset({"path", "revision", "url"})
# FuseML's codeset attributes (`version` is the commit, as `revision`)
FUSEML_INPUT_ATTRS = frozenset({"name", "project", "version"})
# `{{ extensions.NAME.FIELD }}`: the fields fuseml-core resolved (url, product, version, zone,
# service_resource, service_category), plus the record fields the compiler also resolves
# (controller/compiler/extensions.py); `cfg.KEY` (or `configuration.KEY`) is a configuration entry
EXTENSION_FIELDS = frozenset(
    {"url", "product", "version", "zone", "service_resource", "service_category"}
    | {"id", "extension_id", "service_id", "resource", "category", "endpoint_type", "description"}
)
EXTENSION_CONFIG = frozenset({"cfg", "configuration"})
_COMPARISONS: tuple[WhenOp, ...] = ("==", "!=", "<=", ">=", "<", ">")


class ExpressionError(ValueError):
    """A malformed expression; `offset` is the 0-based character offset in the string."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


def has_expression(text: str) -> bool:
    return "{{" in text


def parse_ref(body: str, offset: int = 0, *, fuseml: bool = False) -> Ref:
    """Parse the inside of `{{ ... }}` (already stripped) into a reference."""
    if not body:
        raise ExpressionError("empty expression '{{ }}'", offset)
    parts = body.split(".")
    for part in parts:
        if not _NAME_RE.match(part):
            raise ExpressionError(
                f"malformed reference {shorten(body)}: {shorten(part)} is not a name", offset
            )
    root = parts[0]
    if root == "inputs":
        if len(parts) == 2:
            return InputRef(parts[1])
        allowed = INPUT_ATTRS | (FUSEML_INPUT_ATTRS if fuseml else frozenset())
        if len(parts) == 3 and parts[2] in allowed:
            return InputRef(parts[1], parts[2])
        raise ExpressionError(
            f"malformed reference {shorten(body)}: expected inputs.NAME or "
            f"inputs.NAME.{{{'|'.join(sorted(allowed))}}}",
            offset,
        )
    if root == "steps":
        if len(parts) == 4 and parts[2] == "outputs":
            return StepOutputRef(parts[1], parts[3])
        raise ExpressionError(
            f"malformed reference {shorten(body)}: expected steps.STEP.outputs.OUTPUT", offset
        )
    if root == "outputs":
        if len(parts) == 3 and parts[2] == "path":
            return OutputPathRef(parts[1])
        raise ExpressionError(f"malformed reference {shorten(body)}: expected outputs.NAME.path", offset)
    if root == "extensions":
        if (len(parts) == 3 and parts[2] in EXTENSION_FIELDS) or (
            len(parts) == 4 and parts[2] in EXTENSION_CONFIG
        ):
            return ExtensionRef(parts[1], tuple(parts[2:]))
        raise ExpressionError(
            f"malformed reference {shorten(body)}: expected extensions.NAME.cfg.KEY or "
            f"extensions.NAME.{{{'|'.join(sorted(EXTENSION_FIELDS))}}}",
            offset,
        )
    raise ExpressionError(
        f"unknown reference root {shorten(root)} in {shorten(body)}: "
        "expected inputs, steps, outputs or extensions",
        offset,
    )


def parse_template(text: str, *, fuseml: bool = False) -> Template:
    """Split a string into literal text and parsed `{{ ... }}` references."""
    parts: list[Literal_ | Ref] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < len(text):
                parts.append(Literal_(text[pos:]))
            break
        if start > pos:
            parts.append(Literal_(text[pos:start]))
        end = text.find("}}", start + 2)
        if end < 0:
            raise ExpressionError("unterminated expression: '{{' without '}}'", start)
        inner = text[start + 2 : end]
        if "{{" in inner:
            raise ExpressionError(
                "unterminated expression: '{{' inside another '{{'", start + 2 + inner.find("{{")
            )
        parts.append(parse_ref(inner.strip(), start, fuseml=fuseml))
        pos = end + 2
    return Template(text, tuple(parts))


def _find_operator(text: str) -> tuple[int, WhenOp] | None:
    """The first comparison operator outside `{{ ... }}` and quotes."""
    i, quote = 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif text.startswith("{{", i):
            close = text.find("}}", i)
            if close < 0:
                raise ExpressionError("unterminated expression: '{{' without '}}'", i)
            i = close + 2
            continue
        else:
            for op in _COMPARISONS:
                if text.startswith(op, i):
                    return i, op
            for word in ("notin", "in"):
                if (
                    text.startswith(word, i)
                    and (i == 0 or text[i - 1].isspace())
                    and i + len(word) < len(text)
                    and text[i + len(word)].isspace()
                ):
                    return i, word  # type: ignore[return-value]
        i += 1
    return None


def _operand(text: str, offset: int, *, fuseml: bool) -> Template:
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("missing operand", offset)
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        stripped = stripped[1:-1]
    return parse_template(stripped, fuseml=fuseml)


def parse_when(text: str, *, fuseml: bool = False) -> When:
    """Parse `LEFT OP RIGHT` with OP one of ==, !=, <, <=, >, >=, in, notin."""
    found = _find_operator(text)
    if found is None:
        raise ExpressionError("a condition needs an operator: ==, !=, <, <=, >, >=, in or notin", 0)
    at, op = found
    left = _operand(text[:at], 0, fuseml=fuseml)
    rest = text[at + len(op) :]
    rest_offset = at + len(op)
    if op in ("in", "notin"):
        body = rest.strip()
        if not (body.startswith("[") and body.endswith("]")):
            raise ExpressionError(f"'{op}' needs a list such as [a, b]", rest_offset)
        items = [item for item in body[1:-1].split(",")]
        if not body[1:-1].strip():
            raise ExpressionError(f"'{op}' needs at least one value", rest_offset)
        right = tuple(_operand(item, rest_offset, fuseml=fuseml) for item in items)
    else:
        if _find_operator(rest) is not None:
            raise ExpressionError("only one comparison is allowed in a condition", rest_offset)
        right = (_operand(rest, rest_offset, fuseml=fuseml),)
    return When(left=left, op=op, right=right, raw=text)


def walk_strings(value: object, path: str):
    """Yield (json_path, string) for every string inside a nested value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{index}]")
