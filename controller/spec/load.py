"""Reading a workflow: bytes -> YAML -> schema -> typed model -> semantic checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller import settings
from controller.spec.build import build_native
from controller.spec.diagnose import Collector
from controller.spec.errors import Diagnostic, SpecError
from controller.spec.fuseml import build_fuseml
from controller.spec.model import Workflow
from controller.spec.schema import check_forbidden, check_schema, schema_valid
from controller.spec.semantics import check_semantics
from controller.spec.yamlload import YamlError, decode, parse_yaml, read_limited


def validate_document(
    doc: Any, file: str, positions: Mapping[str, tuple[int, int]] | None = None
) -> Workflow:
    """A parsed document -> a validated Workflow, or SpecError with every problem found."""
    positions = dict(positions or {})
    out = Collector(file, positions)
    if not isinstance(doc, dict):
        out.error("$", "schema.type", "a workflow must be a mapping")
        raise SpecError(out.diagnostics)
    if not schema_valid(doc):
        # the schema closes every object a pod field could hide in, so a valid document has none;
        # only an invalid one is searched, to say why such a field is refused
        check_forbidden(doc, out)
        check_schema(doc, out)
    if out.failed:
        raise SpecError(out.diagnostics)
    native = "apiVersion" in doc or "kind" in doc
    workflow, reader = (build_native if native else build_fuseml)(doc, out, positions)
    check_semantics(workflow, reader.sites, out)
    if out.failed:
        raise SpecError(out.diagnostics)
    return workflow


def load_workflow_text(text: str, file: str = "<string>") -> Workflow:
    try:
        data = text.encode("utf-8")
        parsed = parse_yaml(decode(data, file), file)
    except YamlError as exc:
        raise SpecError([exc.diagnostic]) from None
    return validate_document(parsed.value, file, parsed.positions)


def load_workflow_bytes(data: bytes, file: str) -> Workflow:
    try:
        parsed = parse_yaml(decode(data, file), file)
    except YamlError as exc:
        raise SpecError([exc.diagnostic]) from None
    return validate_document(parsed.value, file, parsed.positions)


def load_workflow(path: str, *, max_bytes: int = settings.MAX_FILE_BYTES) -> Workflow:
    """Load and validate a workflow file (native or FuseML)."""
    try:
        data = read_limited(path, max_bytes=max_bytes)
    except OSError as exc:
        raise SpecError(
            [Diagnostic(path, 0, 0, "", "file.unreadable", exc.strerror or "cannot read file")]
        ) from None
    try:
        parsed = parse_yaml(decode(data, path, max_bytes=max_bytes), path)
    except YamlError as exc:
        raise SpecError([exc.diagnostic]) from None
    return validate_document(parsed.value, path, parsed.positions)


def load_workflow_object(obj: Mapping[str, Any], source: str) -> Workflow:
    """A Workflow object read from the Kubernetes API (no file, so no line numbers)."""
    return validate_document(dict(obj), source)
