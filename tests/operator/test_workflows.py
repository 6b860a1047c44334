"""Workflow reconciler against the emulated API server: conditions, paths, isolation, admission."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import yaml

from controller.operator import conditions as cond
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually, path

ROOT = Path(__file__).resolve().parents[2]


def sum_of_two(name: str = "sum-of-two") -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "workflows" / "sum-of-two.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": NAMESPACE}
    return doc


async def workflow_condition(api: Api, name: str, ctype: str) -> dict[str, Any] | None:
    obj = await api.get(path("sluice.dev/v1alpha1", "workflows", name))
    found = cond.condition(((obj or {}).get("status") or {}).get("conditions"), ctype)
    return dict(found) if found else None


async def test_valid_workflow_becomes_ready(api: Api, operator: RunningOperator) -> None:
    await api.apply(sum_of_two())
    ready = await eventually(lambda: workflow_condition(api, "sum-of-two", "Ready"), what="Ready")
    assert ready["status"] == "True"
    assert ready["reason"] == "Valid"
    assert "4 steps" in ready["message"]
    obj = await api.get(path("sluice.dev/v1alpha1", "workflows", "sum-of-two"))
    assert obj is not None
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert cond.condition(obj["status"]["conditions"], "Stalled") is None


async def test_invalid_workflow_stalls_with_its_path_while_others_proceed(
    api: Api, operator: RunningOperator
) -> None:
    broken = sum_of_two("broken")
    broken["spec"]["steps"][1]["with"]["dataset"] = "{{ steps.nowhere.outputs.dataset }}"
    await api.apply(broken)
    await api.apply(sum_of_two("fine"))

    stalled = await eventually(lambda: workflow_condition(api, "broken", "Stalled"), what="Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("$.spec.steps[1].with.dataset: "), stalled["message"]
    assert "\n" not in stalled["message"]
    ready = await eventually(lambda: workflow_condition(api, "broken", "Ready"), what="Ready=False")
    assert ready["status"] == "False"

    fine = await eventually(lambda: workflow_condition(api, "fine", "Ready"), what="other workflow Ready")
    assert fine["status"] == "True"

    # Invalid input is permanent: no retry storm of status writes on the broken workflow.
    async def broken_events() -> list[dict[str, Any]]:
        return [
            e
            for e in api.server.objects_of("v1/events", NAMESPACE)
            if e["involvedObject"]["name"] == "broken"
        ]

    events = await eventually(broken_events, what="the InvalidSpec event")
    writes_before = operator_writes(api, "workflows")
    await asyncio.sleep(0.5)
    assert operator_writes(api, "workflows") == writes_before
    events = await broken_events()
    assert [e["reason"] for e in events] == ["InvalidSpec"]
    assert events[0]["type"] == "Warning" and "\n" not in events[0]["message"]


async def test_fixing_a_workflow_moves_it_to_ready_with_new_generation(
    api: Api, operator: RunningOperator
) -> None:
    broken = sum_of_two("wf")
    broken["spec"]["steps"][0]["uses"] = "sluice/no-such-stage"
    await api.apply(broken)
    await eventually(lambda: workflow_condition(api, "wf", "Stalled"), what="Stalled")

    fixed = copy.deepcopy(sum_of_two("wf")["spec"])
    await api.call("PATCH", path("sluice.dev/v1alpha1", "workflows", "wf"), {"spec": fixed})

    async def ready_again() -> dict[str, Any] | None:
        found = await workflow_condition(api, "wf", "Ready")
        return found if found and found["status"] == "True" else None

    ready = await eventually(ready_again, what="Ready after the fix")
    assert ready["observedGeneration"] == 2
    assert await workflow_condition(api, "wf", "Stalled") is None


async def test_admission_rejects_what_the_crd_schema_rejects(api: Api) -> None:
    bad = sum_of_two("bad-admission")
    bad["spec"]["steps"][0]["name"] = "Not A DNS Label"
    status, body = await api.try_call("POST", path("sluice.dev/v1alpha1", "workflows"), bad)
    assert status == 422
    assert "steps.0.name" in body["message"]
    codeset = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Codeset",
        "metadata": {"name": "repo", "namespace": NAMESPACE},
        "spec": {"url": "https://example.com/repo.git", "interval": "500ms"},
    }
    status, body = await api.try_call("POST", path("sluice.dev/v1alpha1", "codesets"), codeset)
    assert status == 422
    assert "interval" in body["message"]
    codeset["spec"]["interval"] = "30s"
    status, _ = await api.try_call("POST", path("sluice.dev/v1alpha1", "codesets"), codeset)
    assert status == 201 or status == 200


def operator_writes(api: Api, plural: str) -> int:
    return api.server.writes(plural)
