"""Container steps' `{{ outputs.NAME.path }}` run locally as host processes, as Tekton runs them."""

from __future__ import annotations

from pathlib import Path

from controller.compiler import compile_run
from controller.spec import load_workflow, load_workflow_text
from tests.local.helpers import run_local

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "tests/compiler/workflows/container-outputs.yaml"


def _workflow(step: str) -> str:
    return f"""
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {{name: outs}}
spec:
  steps:
{step}
"""


def test_directory_and_scalar_outputs_travel_to_the_next_step_and_the_run(home: Path) -> None:
    record = run_local(compile_run(load_workflow(str(EXAMPLE))), home)
    assert record.phase == "Succeeded", {n: t.message for n, t in record.tasks.items()}
    make = record.tasks["make"]
    table = Path(make.results["table"])
    assert table.parts[-2:] == ("make", "table") and (table / "rows.csv").read_text() == "0,0\n1,1\n2,4\n"
    assert make.results["count"] == "3"  # `echo` wrote 3 and a newline: the newline is dropped
    assert record.outputs == {"summary": "3 rows, last 2,4", "count": "3"}
    report = Path(record.tasks["summarise"].results["report"])
    assert (report / "report.txt").read_text() == "0,0\n1,1\n2,4"
    assert [a["result"] for a in make.artifacts if "result" in a] == ["table"]  # lineage names the output


def test_an_output_not_written_fails_the_step_naming_it(home: Path) -> None:
    step = """
    - name: lazy
      image: busybox
      script: echo "nothing written to {{ outputs.data.path }}"
      outputs: [{name: data, type: dataset}, {name: score, type: number}]
"""
    record = run_local(compile_run(load_workflow_text(_workflow(step), "lazy.yaml")), home)
    task = record.tasks["lazy"]
    assert task.phase == "Failed" and "check-outputs" in task.message
    log = (record.folder / task.log).read_text()
    assert "step 'lazy' wrote nothing to output 'data'" in log
    assert "step 'lazy' did not write output 'score': write it to {{ outputs.score.path }}" in log


def test_a_retry_starts_with_an_empty_output_directory(home: Path) -> None:
    step = """
    - name: flaky
      image: busybox
      retries: 1
      script: |
        test -z "$(ls -A '{{ outputs.data.path }}')" || { echo leftover; exit 3; }
        touch '{{ outputs.data.path }}/part'
        test "$(context.task.retry-count)" = 1
      outputs: [{name: data, type: dataset}]
"""
    record = run_local(compile_run(load_workflow_text(_workflow(step), "flaky.yaml")), home)
    task = record.tasks["flaky"]
    assert task.phase == "Succeeded" and task.attempts == 2, task.message
    assert (Path(task.results["data"]) / "part").is_file()
