"""Reading FuseML extension description files: the file I/O the compiler's registry does not do.

A path is a description file, or a folder searched for `description.yaml` at any depth and
`*.yaml` at its top. Every file is read like a workflow file: at most `settings.MAX_FILE_BYTES`,
UTF-8, parsed by the hardened YAML parser (`yamlload`: nesting depth checked before anything is
composed, no aliases, anchors or unknown tags, no duplicate keys), so a hostile description is
refused with its file, line and column. A file may hold several documents (`---`).

The (source, document) pairs go to `controller.compiler.ExtensionRegistry.from_sources`; the
source names a document in messages: the file, or `file[i]` in a file of several documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from controller.spec.yamlload import YamlError, decode, parse_yaml_documents, read_limited


class ExtensionFileError(ValueError):
    """A description file that cannot be read or is not acceptable YAML."""


def read_extension_files(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Any]]:
    """Every document of the description files under `paths`, in path order, with its source."""
    documents: list[tuple[str, Any]] = []
    for path in paths:
        for file in _description_files(Path(path)):
            documents.extend(_read(file))
    return documents


def _description_files(path: Path) -> list[Path]:
    if path.is_dir():
        found = {p for p in path.rglob("description.y*ml")} | {p for p in path.glob("*.y*ml")}
        return sorted(p for p in found if p.is_file() and p.suffix in (".yaml", ".yml"))
    if not path.exists():
        raise ExtensionFileError(f"{path}: no such file or folder")
    return [path]


def _read(file: Path) -> list[tuple[str, Any]]:
    name = str(file)
    try:
        data = read_limited(name)
    except OSError as exc:
        raise ExtensionFileError(f"{name}: {exc.strerror or 'cannot read'}") from None
    return parse_extension_data(data, name)


def parse_extension_data(data: bytes, name: str) -> list[tuple[str, Any]]:
    """The documents of one description (a file's bytes, or a ConfigMap value), with their sources,
    through the same checks as a description file; ExtensionFileError naming `name`, line and
    column otherwise."""
    try:
        documents = [parsed.value for parsed in parse_yaml_documents(decode(data, name), name)]
    except YamlError as exc:
        found = exc.diagnostic
        where = f"{found.file}:{found.line}:{found.col}" if found.line else found.file
        kind = "" if found.code.startswith("file.") else "invalid YAML: "
        raise ExtensionFileError(f"{where}: {kind}{found.message}") from None
    if len(documents) == 1:
        return [(name, documents[0])]
    return [(f"{name}[{index}]", document) for index, document in enumerate(documents)]
