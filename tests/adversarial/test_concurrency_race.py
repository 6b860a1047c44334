"""runPolicy.concurrency under simultaneous creates (issue 16, item 3). The decision used to be
taken from watch-fed memory that only knew a run had a PipelineRun once its status said so: two
runs created together both started under Forbid (5 of 5 trials), and of 30 at once, 16 PipelineRuns
were made under Forbid and 14 never cancelled under Replace. Now it is one decision at a time per
Workflow, from the API's list of its PipelineRuns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("controller.operator.main", reason="the operator is not importable")
pytest.importorskip("testsupport.emulator", reason="the operator's emulator harness is missing")

from controller.settings import LABEL_WORKFLOW
from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually
from tests.operator.conftest import api as api
from tests.operator.conftest import apiserver as apiserver
from tests.operator.conftest import operator as operator
from tests.operator.test_workflowruns import get_run, workflow_run
from tests.operator.test_workflows import sum_of_two

TRIALS = 3


async def _workflow(api: Api, name: str, policy: str) -> None:
    workflow = sum_of_two(name)
    workflow["spec"]["runPolicy"] = {"concurrency": policy}
    await api.apply(workflow)


async def _create_together(api: Api, workflow: str, count: int) -> dict[str, str]:
    """The runs' names -> creationTimestamp."""
    runs = [f"{workflow}-r{i:02d}" for i in range(count)]
    made = await asyncio.gather(
        *(api.apply(workflow_run(r, workflow, inputs={"samples": 500})) for r in runs)
    )
    return {m["metadata"]["name"]: m["metadata"]["creationTimestamp"] for m in made}


async def _phase(api: Api, run: str) -> str:
    found = await get_run(api, run)
    if found is None:
        return "pruned"  # finished, and past the Workflow's historyLimit
    return str((found.get("status") or {}).get("phase") or "")


async def _all_decided(api: Api, runs: list[str]) -> dict[str, str] | None:
    phases = {r: await _phase(api, r) for r in runs}
    _last_phases.update(phases)
    return phases if all(phases.values()) else None


_last_phases: dict[str, str] = {}


def _pipelineruns(api: Api, workflow: str) -> list[dict[str, Any]]:
    return [
        p
        for p in api.server.objects_of(tekton.TEKTON + "/pipelineruns", NAMESPACE)
        if (p["metadata"].get("labels") or {}).get(LABEL_WORKFLOW) == workflow
    ]


@pytest.fixture(params=[2, 30])
def count(request: pytest.FixtureRequest) -> int:
    """How many runs are created at once."""
    return int(request.param)


async def _races(
    api: Api, policy: str, count: int
) -> AsyncIterator[tuple[int, str, dict[str, str], dict[str, str]]]:
    """TRIALS races, each of `count` runs of a fresh `policy` Workflow created at once, waited for
    until each is decided: (trial, workflow, run -> creation order, run -> phase)."""
    for trial in range(TRIALS):
        workflow = f"{policy.lower()}-{count}-{trial}"
        await _workflow(api, workflow, policy)
        runs = await _create_together(api, workflow, count)
        try:
            phases = await eventually(
                lambda r=list(runs): _all_decided(api, r), timeout=60, what="every run decided"
            )
        except AssertionError:
            raise AssertionError(f"undecided: {_last_phases}") from None
        yield trial, workflow, runs, phases


async def test_forbid_starts_exactly_one_of_runs_created_together(
    api: Api, operator: RunningOperator, count: int
) -> None:
    async for trial, workflow, _, phases in _races(api, "Forbid", count):
        made = _pipelineruns(api, workflow)
        assert len(made) == 1, f"trial {trial}: {len(made)} PipelineRuns under Forbid"
        started = [r for r, phase in phases.items() if phase not in ("Cancelled", "pruned")]
        assert started == [made[0]["metadata"]["name"]]
        await asyncio.sleep(0.5)  # nothing more appears later
        assert len(_pipelineruns(api, workflow)) == 1


async def test_replace_leaves_only_the_newest_of_runs_created_together(
    api: Api, operator: RunningOperator, count: int
) -> None:
    async for trial, workflow, runs, _ in _races(api, "Replace", count):
        newest = max(runs, key=lambda r: (runs[r], r))
        await _only_left(api, workflow, newest, trial)


async def _only_left(api: Api, workflow: str, newest: str, trial: int) -> None:
    async def settled() -> list[str] | None:
        live = [
            p["metadata"]["name"]
            for p in _pipelineruns(api, workflow)
            if (p.get("spec") or {}).get("status") != "Cancelled"
        ]
        return live if live == [newest] else None

    await eventually(settled, timeout=30, what=f"trial {trial}: only {newest} left running")
    await asyncio.sleep(0.5)
    assert await settled() == [newest]
