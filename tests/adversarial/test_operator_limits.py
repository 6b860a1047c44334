"""Failed PipelineRun creates end the run instead of retrying silently forever (issue 16, item 4),
against the emulator that now refuses what a real API server refuses (item 8).

- a WorkflowRun name of 76 characters (a valid object name) is longer than a label value may be:
  the `sluice.dev/run` label takes its hashed form and the run starts;
- an answer the same request will always get (a 4xx other than 404/409/429) ends the run Failed
  with the reason, a Warning Event, and no retries;
- a workflow that compiles to a PipelineRun over the compiler's limit is refused by the compiler
  (`compile.too-large`, with the workflow's path), never sent to the API server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("controller.operator.main", reason="the operator is not importable")
pytest.importorskip("testsupport.emulator", reason="the operator's emulator harness is missing")

from controller.api.conditions import COMPILE_FAILED, CREATE_REFUSED
from controller.compiler.pipelinerun import MAX_PIPELINERUN_BYTES
from controller.operator import conditions as cond
from controller.settings import LABEL_RUN
from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually, path
from tests.operator.conftest import api as api
from tests.operator.conftest import apiserver as apiserver
from tests.operator.conftest import operator as operator
from tests.operator.test_workflowruns import SLUICE, pipelinerun_of, wait_phase, workflow_run
from tests.operator.test_workflows import sum_of_two

REPO = Path(__file__).resolve().parents[2]
STEPS = 100


async def test_a_run_name_longer_than_a_label_value_still_starts(api: Api, operator: RunningOperator) -> None:
    name = "a-very-long-workflowrun-name-" + "x" * 47  # 76 characters: a valid object name
    assert len(name) == 76
    await api.apply(sum_of_two())
    await api.apply(workflow_run(name, inputs={"samples": 500}))
    pipelinerun = await pipelinerun_of(api, name)
    label = pipelinerun["metadata"]["labels"][LABEL_RUN]
    assert len(label) <= 63 and label.startswith(name[:40])
    await wait_phase(api, name, "Pending")
    await tekton.set_pipelinerun(api, NAMESPACE, name, tekton.status("Unknown", "Running"))
    await wait_phase(api, name, "Running")


async def _warning(api: Api, run: str, reason: str) -> dict[str, Any] | None:
    for event in api.server.objects_of("v1/events", NAMESPACE):
        if (event.get("involvedObject") or {}).get("name") == run and event.get("reason") == reason:
            return event
    return None


async def test_a_permanent_api_error_on_create_fails_the_run_with_an_event(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(sum_of_two())
    fault = api.server.inject(422, "POST", "pipelineruns", times=100)
    await api.apply(workflow_run("run-1", inputs={"samples": 500}))
    status = await wait_phase(api, "run-1", "Failed", timeout=20)
    stalled = cond.condition(status["conditions"], "Stalled")
    assert stalled["reason"] == CREATE_REFUSED and "422" in stalled["message"]
    event = await eventually(lambda: _warning(api, "run-1", CREATE_REFUSED), what="Warning event")
    assert event["type"] == "Warning"
    attempts = fault.hits
    assert attempts <= 2, f"{attempts} create attempts for an answer that never changes"


def big_workflow(steps: int, refs: int) -> dict[str, Any]:
    """Container steps whose scripts and args hold many references: the compiled PipelineRun grows
    much more than the workflow (a param per reference and task, its pipeline-level value, the env)."""
    names = [f"input-{i:02d}-" + "n" * 50 for i in range(refs)]  # long names: they are repeated most
    inputs = [{"name": name, "type": "string", "default": "v"} for name in names]
    body = 'echo "$@"'  # the args hold the references
    return {
        "apiVersion": SLUICE,
        "kind": "Workflow",
        "metadata": {"name": "big", "namespace": NAMESPACE},
        "spec": {
            "inputs": inputs,
            "steps": [
                {
                    "name": f"step-{s}",
                    "image": "busybox",
                    "script": body,
                    "args": [f"{{{{ inputs.{name} }}}}" for name in names],
                }
                for s in range(steps)
            ],
        },
    }


def test_the_compiler_refuses_a_pipelinerun_over_its_limit_with_the_workflows_path(tmp_path: Path) -> None:
    workflow = big_workflow(STEPS, 60)  # 470 KiB; it compiled to 2.4 MiB
    source = tmp_path / "big.yaml"
    source.write_text(yaml.safe_dump(workflow))
    assert source.stat().st_size < 1024 * 1024  # a file `sluice` reads
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "compile", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1, result.stdout[:300]
    assert result.stderr.startswith(f"{source}:"), result.stderr[:300]
    assert "Traceback" not in result.stderr
    assert f"{MAX_PIPELINERUN_BYTES // 1024} KiB" in result.stderr


async def test_a_workflow_too_large_to_run_fails_its_run_without_a_create(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(big_workflow(STEPS, 60))
    await api.apply(workflow_run("run-big", "big"))
    status = await wait_phase(api, "run-big", "Failed", timeout=30)
    stalled = cond.condition(status["conditions"], "Stalled")
    assert stalled["reason"] == COMPILE_FAILED and "KiB" in stalled["message"]
    assert await api.get(path(tekton.TEKTON, "pipelineruns", "run-big")) is None
