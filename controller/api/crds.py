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


def _column(name: str, json_path: str, kind: str = "string", priority: int | None = None) -> dict[str, Any]:
    """One of `kubectl get`'s printer columns."""
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": json_path}
    if priority is not None:
        column["priority"] = priority
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


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
    """File name in `crds/` (`<plural>.yaml`) -> CRD object, in a stable order."""
    ready = _column("Ready", _READY)
    message = _column("Message", _MESSAGE, priority=1)
    crds = [
        _crd(
            CODESET,
            "codesets",
            ["cs"],
            codeset_schema(),
            [_column("URL", ".spec.url"), _column("Revision", ".status.revision"), ready, _AGE, message],
        ),
        _crd(
            WORKFLOW_RUN,
            "workflowruns",
            ["wfr"],
            workflowrun_schema(),
            [
                _column("Workflow", ".spec.workflowRef.name"),
                _column("Phase", ".status.phase"),
                _column("Revision", ".metadata.labels.sluice\\.dev/revision"),
                _AGE,
                message,
            ],
        ),
        _crd(
            WORKFLOW,
            "workflows",
            ["wf"],
            workflow_schema(),
            [
                ready,
                _column("Last Run", ".status.lastRun.name"),
                _column("Phase", ".status.lastRun.phase"),
                _AGE,
                # as `kubectl get cronjobs` shows them, in the wide view
                _column("Schedule", ".spec.schedule.cron", priority=1),
                _column("Suspend", ".spec.schedule.suspend", "boolean", priority=1),
                _column("Last Schedule", ".status.lastScheduleTime", "date", priority=1),
                message,
            ],
        ),
    ]
    return {f"{crd['spec']['names']['plural']}.yaml": crd for crd in crds}


def render(crd: dict[str, Any]) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=110, default_flow_style=False)


def render_all() -> str:
    """What `sluice crds` prints: every CRD, `---` separated, in file-name order."""
    return "".join(f"---\n{render(crd)}" for _, crd in sorted(all_crds().items()))
