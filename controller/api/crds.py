"""The CustomResourceDefinitions of Workflow, Codeset and WorkflowRun (`sluice crds`).

Generated from the resource schemas of this package; `crds/` and `charts/sluice/crds/` hold what
this prints (`sluice crds -o crds && bash scripts/sync-chart-crds.sh`, a test fails while stale).
"""

from __future__ import annotations

from typing import Any

import yaml

from controller.api.codeset import codeset_schema
from controller.api.conditions import READY
from controller.api.meta import CODESET, GROUP, VERSION, WORKFLOW, WORKFLOW_RUN
from controller.api.workflow import workflow_schema
from controller.api.workflowrun import workflowrun_schema

_READY = f'.status.conditions[?(@.type=="{READY}")].status'
_MESSAGE = f'.status.conditions[?(@.type=="{READY}")].message'
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    kind: str, plural: str, short: list[str], schema: dict[str, Any], columns: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "sluice"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["sluice"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name in `crds/` -> CRD object, in a stable order."""
    ready = {"name": "Ready", "type": "string", "jsonPath": _READY}
    message = {"name": "Message", "type": "string", "jsonPath": _MESSAGE, "priority": 1}
    return {
        "codesets.yaml": _crd(
            CODESET,
            "codesets",
            ["cs"],
            codeset_schema(),
            [
                {"name": "URL", "type": "string", "jsonPath": ".spec.url"},
                {"name": "Revision", "type": "string", "jsonPath": ".status.revision"},
                ready,
                _AGE,
                message,
            ],
        ),
        "workflowruns.yaml": _crd(
            WORKFLOW_RUN,
            "workflowruns",
            ["wfr"],
            workflowrun_schema(),
            [
                {"name": "Workflow", "type": "string", "jsonPath": ".spec.workflowRef.name"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Revision", "type": "string", "jsonPath": ".metadata.labels.sluice\\.dev/revision"},
                _AGE,
                message,
            ],
        ),
        "workflows.yaml": _crd(
            WORKFLOW,
            "workflows",
            ["wf"],
            workflow_schema(),
            [
                ready,
                {"name": "Last Run", "type": "string", "jsonPath": ".status.lastRun.name"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.lastRun.phase"},
                _AGE,
                message,
            ],
        ),
    }


def render(crd: dict[str, Any]) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=110, default_flow_style=False)


def render_all() -> str:
    """What `sluice crds` prints: every CRD, `---` separated, in file-name order."""
    return "".join(f"---\n{render(crd)}" for _, crd in sorted(all_crds().items()))
