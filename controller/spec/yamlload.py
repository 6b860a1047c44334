"""Safe YAML loading with limits, built from parse events so every node keeps its position.

PyYAML's composer is recursive (the C loader segfaults on 100 000 nested
lists, the Python one raises RecursionError), silently keeps the last of
duplicate keys and expands aliases (billion laughs). So this module consumes
the event stream itself: depth is checked on each start event before anything
is composed, aliases and unknown tags are refused, duplicate keys are errors,
and the JSON path of every node is mapped to its line and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from controller import settings
from controller.spec.errors import Diagnostic, shorten

try:  # libyaml's event parser is iterative and fast; composing is ours
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

_CORE = "tag:yaml.org,2002:"
_TAB_INDENT = re.compile(r"^ *\t")
_ALLOWED_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))


class _Resolver(Resolver):
    """YAML 1.1 implicit types minus timestamps, which JSON has no type for."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _CORE + "timestamp"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


class _EventParser(_Parser):  # type: ignore[misc,valid-type]
    pass


_resolver = _Resolver()
_constructor = SafeConstructor()


@dataclass
class Parsed:
    value: Any
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)


class YamlError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


class _BadScalar(ValueError):
    pass


_PLAIN_CACHE: dict[str, Any] = {}  # plain scalar text -> its (immutable) value
_PLAIN_CACHE_LIMIT = 4096
_MISS = object()


def _scalar(event: Any) -> Any:
    if event.tag is None:
        if not event.implicit[0]:  # quoted or block scalars without a tag are strings
            return event.value
        value = _PLAIN_CACHE.get(event.value, _MISS)
        if value is _MISS:  # resolving implicit types runs a dozen regexes: do it once per text
            value = _construct(event)
            if len(_PLAIN_CACHE) < _PLAIN_CACHE_LIMIT:
                _PLAIN_CACHE[event.value] = value
        return value
    return _construct(event)


def _construct(event: Any) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        tag = _resolver.resolve(ScalarNode, event.value, event.implicit)
        if tag not in _ALLOWED_TAGS:  # `<<` (merge) and `=` (value) resolve to tags JSON has no use for
            tag = _CORE + "str"
    elif tag in (_CORE + "map", _CORE + "seq"):
        raise _BadScalar(f"a plain value cannot be tagged {tag.removeprefix(_CORE)!r}")
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        return _constructor.yaml_constructors[tag](_constructor, node)
    except (ValueError, TypeError, ArithmeticError, LookupError, yaml.YAMLError):
        # e.g. `!!int abc`, `!!int ""`, `!!bool maybe`, or an integer too long for Python to convert
        raise _BadScalar(f"{shorten(event.value)} is not a valid {tag.removeprefix(_CORE)}") from None


class _Frame:
    """A mapping or sequence being built, with its JSON path."""

    __slots__ = ("container", "key", "key_pos", "path")

    def __init__(self, container: dict[str, Any] | list[Any], path: str):
        self.container = container
        self.path = path
        self.key: Any = _NO_KEY
        self.key_pos = (0, 0)


_NO_KEY = object()


def _line(text: str, index: int) -> str:
    """Line `index` (0-based) of text, "" past the end."""
    lines = text.split("\n", index + 1)
    return lines[index] if index < len(lines) else ""


def _child_path(parent: str, key: Any) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}.{key}"


def _events(text: str) -> Iterator[Any]:
    parser = _EventParser(text)
    check, get = parser.check_event, parser.get_event
    try:
        while check():
            yield get()
    finally:
        parser.dispose()


def parse_yaml(text: str, file: str, *, max_depth: int = settings.MAX_DEPTH) -> Parsed:
    """Parse exactly one YAML document into plain JSON-like values with positions."""
    return _parse(text, file, max_depth, False)[0]


def parse_yaml_documents(text: str, file: str, *, max_depth: int = settings.MAX_DEPTH) -> list[Parsed]:
    """Parse every document of a YAML stream (`---` separated) with the same limits; empty
    (null) documents are left out, so an empty text gives an empty list."""
    return _parse(text, file, max_depth, True)


def _parse(text: str, file: str, max_depth: int, several: bool) -> list[Parsed]:
    def fail(code: str, message: str, pos: tuple[int, int] = (0, 0), path: str = "") -> YamlError:
        return YamlError(Diagnostic(file, pos[0], pos[1], path, code, message))

    positions: dict[str, tuple[int, int]] = {}
    stack: list[_Frame] = []
    root: Any = None
    documents = 0
    seen_root = False
    found: list[Parsed] = []

    def attach(value: Any, pos: tuple[int, int]) -> str:
        nonlocal root, seen_root
        if not stack:
            root, seen_root = value, True
            positions["$"] = pos
            return "$"
        frame = stack[-1]
        if isinstance(frame.container, list):
            path = _child_path(frame.path, len(frame.container))
            frame.container.append(value)
            positions[path] = pos
            return path
        if frame.key is _NO_KEY:  # this value is a key
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise fail("yaml.complex-key", "mapping keys must be scalars", pos, frame.path)
            key = (
                value
                if isinstance(value, str)
                else "null"
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            if key in frame.container:
                line = positions.get(_child_path(frame.path, key), (0, 0))[0]
                raise fail(
                    "yaml.duplicate-key",
                    f"duplicate key {shorten(key)} (first defined on line {line})",
                    pos,
                    frame.path,
                )
            frame.key, frame.key_pos = key, pos
            return ""
        path = _child_path(frame.path, frame.key)
        frame.container[frame.key] = value  # type: ignore[index]
        positions[path] = frame.key_pos
        frame.key = _NO_KEY
        return path

    try:
        for event in _events(text):
            kind = type(event)
            if kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1 and not several:
                    raise fail(
                        "yaml.multiple-documents", "exactly one YAML document is allowed", _mark(event)
                    )
            elif kind is yaml.AliasEvent:
                raise fail("yaml.alias", "aliases (*name) are not allowed", _mark(event))
            elif kind in (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent):
                if getattr(event, "anchor", None) is not None:
                    raise fail("yaml.anchor", "anchors (&name) are not allowed", _mark(event))
                tag = event.tag
                if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
                    raise fail("yaml.tag", f"tag {shorten(tag)} is not allowed", _mark(event))
                if kind is yaml.ScalarEvent:
                    try:
                        value = _scalar(event)
                    except _BadScalar as exc:
                        raise fail("yaml.value", f"invalid value: {exc}", _mark(event)) from None
                    mark = event.start_mark
                    attach(value, (mark.line + 1, mark.column + 1))
                    continue
                expected = _CORE + ("map" if kind is yaml.MappingStartEvent else "seq")
                if tag not in (None, "!", expected):
                    raise fail(
                        "yaml.tag",
                        f"tag {shorten(tag)} does not fit a {expected[len(_CORE) :]}",
                        _mark(event),
                    )
                if len(stack) >= max_depth:
                    raise fail("yaml.too-deep", f"nesting deeper than {max_depth} levels", _mark(event))
                container: dict[str, Any] | list[Any] = {} if kind is yaml.MappingStartEvent else []
                is_key = bool(stack) and isinstance(stack[-1].container, dict) and stack[-1].key is _NO_KEY
                if is_key:
                    raise fail(
                        "yaml.complex-key", "mapping keys must be scalars", _mark(event), stack[-1].path
                    )
                path = attach(container, _mark(event))
                stack.append(_Frame(container, path))
            elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                stack.pop()
            elif kind is yaml.DocumentEndEvent and several:
                if seen_root and root is not None:
                    found.append(Parsed(root, positions))
                positions, root, seen_root = {}, None, False
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:  # libyaml's own limit, hit while scanning ahead
            raise fail("yaml.too-deep", f"nesting deeper than {max_depth} levels", pos) from None
        if mark is not None and _TAB_INDENT.match(_line(text, mark.line)):
            problem = "tabs cannot indent YAML; use spaces"
        raise fail("yaml.syntax", f"YAML syntax error: {problem}", pos) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as a control character
        # libyaml reports a byte offset into the UTF-8 text
        before = text.encode("utf-8")[: exc.position if isinstance(exc.position, int) else 0]
        before_text = before.decode("utf-8", "ignore")
        line = before_text.count("\n") + 1
        col = len(before_text) - (before_text.rfind("\n") + 1) + 1
        raise fail(
            "yaml.syntax", f"YAML syntax error: character #x{exc.character:04x} is not allowed", (line, col)
        ) from None
    except yaml.YAMLError as exc:
        raise fail("yaml.syntax", f"YAML syntax error: {str(exc).splitlines()[0]}") from None
    if several:
        return found
    if not seen_root or root is None:
        raise fail("yaml.empty", "the file holds no YAML document", (1, 1))
    return [Parsed(root, positions)]


def decode(data: bytes, file: str, *, max_bytes: int = settings.MAX_FILE_BYTES) -> str:
    """Size-check then decode UTF-8, naming the line of the first bad byte."""
    if len(data) > max_bytes:
        raise YamlError(
            # `data` may be cut at max_bytes + 1 by read_limited, so its length is not the file's size
            Diagnostic(
                file, 0, 0, "", "file.too-large", f"file is larger than the limit of {max_bytes} bytes"
            )
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(Diagnostic(file, line, col, "", "file.encoding", "file is not valid UTF-8")) from None
    if "\x00" in text:
        at = text.index("\x00")
        line, col = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        raise YamlError(Diagnostic(file, line, col, "", "file.encoding", "file contains a NUL character"))
    return text.removeprefix("\ufeff")


def read_limited(path: str, *, max_bytes: int = settings.MAX_FILE_BYTES) -> bytes:
    """Read at most max_bytes + 1 bytes, so a huge file is refused without reading it all."""
    with open(path, "rb") as handle:
        return handle.read(max_bytes + 1)
