"""The workflow language: loading, validating and the typed model."""

from controller.spec.errors import Diagnostic, SpecError
from controller.spec.load import (
    load_workflow,
    load_workflow_bytes,
    load_workflow_object,
    load_workflow_text,
    validate_document,
)
from controller.spec.model import Workflow

__all__ = [
    "Diagnostic",
    "SpecError",
    "Workflow",
    "load_workflow",
    "load_workflow_bytes",
    "load_workflow_object",
    "load_workflow_text",
    "validate_document",
]
