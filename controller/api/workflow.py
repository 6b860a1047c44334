"""The Workflow resource: its CRD schema (from the loader's JSON Schema) and how an object is parsed.

The spec schema is the loader's (`controller/spec/schema/workflow.schema.json`), made structural;
the typed model is `controller.spec.Workflow`. `parse_workflow` is the one way the operator turns
a Workflow object from the API into that model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from controller.api.openapi import conditions_schema, object_schema, structural, time_schema

if TYPE_CHECKING:
    from controller.spec import Workflow

MAX_ENDPOINT_URL_LENGTH = 2048


def workflow_json_schema() -> dict[str, Any]:
    text = resources.files("controller.spec").joinpath("schema/workflow.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def workflow_schema() -> dict[str, Any]:
    """The `openAPIV3Schema` of the Workflow CRD."""
    source = workflow_json_schema()
    defs = source.get("$defs", {})
    spec = structural({"$ref": "#/$defs/workflowSpec"}, defs)
    status = {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": conditions_schema(),
            "lastRun": {
                "type": "object",
                "description": "The newest WorkflowRun of this workflow.",
                "properties": {
                    "name": {"type": "string"},
                    "phase": {"type": "string"},
                    "startTime": time_schema("When its PipelineRun started."),
                    "completionTime": time_schema("When it finished."),
                },
            },
            "lastScheduleTime": time_schema("The latest time spec.schedule fired (run started or skipped)."),
            "nextScheduleTime": time_schema("When spec.schedule fires next."),
            "endpoints": {
                "type": "array",
                "description": "Prediction URLs of the models the latest successful run deployed.",
                "items": {
                    "type": "object",
                    "required": ["name", "url"],
                    "properties": {
                        "name": {"type": "string", "description": "The workflow output holding the URL."},
                        "url": {"type": "string", "maxLength": MAX_ENDPOINT_URL_LENGTH},
                        "run": {"type": "string", "description": "The WorkflowRun that deployed it."},
                    },
                },
            },
        },
    }
    return object_schema(spec, status)


def workflow_object(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Workflow from the API that the loader validates (no server-set metadata)."""
    meta = body.get("metadata") or {}
    clean_meta: dict[str, Any] = {"name": meta.get("name")}
    if meta.get("namespace"):
        clean_meta["namespace"] = meta["namespace"]
    if meta.get("labels"):
        clean_meta["labels"] = dict(meta["labels"])
    if meta.get("generation") is not None:
        clean_meta["generation"] = meta["generation"]
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": clean_meta,
        "spec": body.get("spec"),
    }


def parse_workflow(body: Mapping[str, Any]) -> Workflow:
    """The typed Workflow of an API object; `controller.spec.SpecError` if it does not validate."""
    from controller.spec import load_workflow_object  # the loader is heavy: only when parsing

    name = (body.get("metadata") or {}).get("name")
    return load_workflow_object(workflow_object(body), f"workflow {name}")
