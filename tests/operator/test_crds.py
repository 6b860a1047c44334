"""The CRDs: generated from the workflow JSON Schema, structural, and in sync with `crds/`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.api import crds
from controller.api.codeset import INTERVAL_PATTERN, PATH_PATTERN
from controller.api.workflow import workflow_json_schema

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "$ref",
    "$defs",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "const",
    "propertyNames",
    "patternProperties",
    "unevaluatedProperties",
    "$schema",
    "$id",
}


def _nodes(schema: Any, where: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found = [(where, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        found += _nodes(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        found += _nodes(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _nodes(schema["additionalProperties"], f"{where}.*")
    return found


def test_crds_folder_is_what_sluice_crds_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "crds"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    on_disk = "".join(f"---\n{(ROOT / 'crds' / name).read_text()}" for name in sorted(crds.all_crds()))
    assert printed == on_disk, "crds/ is stale: run `sluice crds -o crds`"


@pytest.mark.parametrize("name", sorted(crds.all_crds()))
def test_every_schema_node_is_structural(name: str) -> None:
    crd = crds.all_crds()[name]
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    for where, node in _nodes(version["schema"]["openAPIV3Schema"]):
        assert not FORBIDDEN & set(node), f"{where} keeps {FORBIDDEN & set(node)}"
        typed = (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        )
        assert typed, f"{where} has no type"
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("additionalProperties") is False:
            raise AssertionError(f"{where}: additionalProperties: false is not structural")


def test_workflow_crd_embeds_the_loader_schema() -> None:
    spec = crds.all_crds()["workflows.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    source = workflow_json_schema()["$defs"]
    step = spec["properties"]["steps"]["items"]
    assert step["properties"]["name"]["pattern"] == source["dnsLabel"]["pattern"]
    assert step["properties"]["with"]["x-kubernetes-preserve-unknown-fields"] is True
    assert spec["properties"]["runPolicy"]["properties"]["concurrency"]["enum"] == [
        "Allow",
        "Forbid",
        "Replace",
    ]
    assert set(spec["properties"]) == set(source["workflowSpec"]["properties"])


@pytest.mark.parametrize(
    ("pattern", "value", "ok"),
    [
        # spec.interval: one second or more
        *[
            (INTERVAL_PATTERN, interval, ok)
            for interval, ok in {
                "1s": True,
                "90s": True,
                "5m": True,
                "1h30m": True,
                "1m0s": True,
                "0s": False,
                "500ms": False,
                "1.5s": False,
                "": False,
                "10": False,
            }.items()
        ],
        # spec.sync.path: relative, and stays inside the repository
        *[
            (PATH_PATTERN, path, ok)
            for path, ok in {
                "workflows": True,
                "ml/workflows/": True,
                ".sluice/wf": True,
                "./wf": True,
                "/etc": False,
                "../up": False,
                "a/../b": False,
            }.items()
        ],
    ],
)
def test_codeset_patterns_admit_what_they_should(pattern: str, value: str, ok: bool) -> None:
    assert bool(re.match(pattern, value)) is ok


def test_printer_columns_and_codeset_fields() -> None:
    all_crds = crds.all_crds()
    columns = {
        c["name"] for c in all_crds["workflowruns.yaml"]["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert {"Phase", "Revision", "Age", "Message"} <= columns
    workflow_columns = {
        c["name"]: c for c in all_crds["workflows.yaml"]["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert workflow_columns["Schedule"]["jsonPath"] == ".spec.schedule.cron"
    assert workflow_columns["Last Schedule"] == {
        "name": "Last Schedule",
        "type": "date",
        "jsonPath": ".status.lastScheduleTime",
        "priority": 1,
    }
    codeset = all_crds["codesets.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    assert set(codeset["properties"]) == {"url", "ref", "interval", "secretRef", "webhook", "sync", "ignore"}
    assert codeset["properties"]["url"]["maxLength"] == 2048
    assert codeset["properties"]["ref"]["maxProperties"] == 1
    loaded = list(yaml.safe_load_all((ROOT / "crds" / "codesets.yaml").read_text()))
    assert loaded[0]["metadata"]["name"] == "codesets.sluice.dev"
