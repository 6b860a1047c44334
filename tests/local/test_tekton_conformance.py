"""`python -m benchmarks tekton-conformance --examples DIR` tells succeeded, refused and failed apart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RUN = """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: {name}
spec:
  pipelineSpec:
    tasks:
      - name: only
        {task}
"""
EXAMPLES = {
    "good.yaml": "taskSpec: {steps: [{name: s, image: alpine, script: 'true'}]}",
    "refused.yaml": "taskRef: {resolver: git}",
    "failing.yaml": "taskSpec: {steps: [{name: s, image: alpine, script: 'echo broken; exit 4'}]}",
}


def benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "tekton-conformance", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_one_row_counts_each_outcome_with_its_reason(tmp_path: Path) -> None:
    for file, task in EXAMPLES.items():
        text = RUN.format(name=file.removesuffix(".yaml"), task=task)
        (tmp_path / file).write_text(textwrap.dedent(text))
    (tmp_path / "ignored.txt").write_text("not an example")
    done = benchmark("--examples", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert (row["succeeded"], row["refused"], row["failed"], row["tracebacks"], row["total"]) == (
        1,
        1,
        1,
        0,
        3,
    )
    assert row["benchmark"] == "tekton-conformance" and row["value"] == 1 and row["met"] is False
    outcomes = {f["file"]: (f["outcome"], f["reason"]) for f in row["files"]}
    assert outcomes["good.yaml"] == ("succeeded", "")
    assert outcomes["refused.yaml"][0] == "refused"
    assert "$.spec.pipelineSpec.tasks[0].taskRef.resolver: the git resolver" in outcomes["refused.yaml"][1]
    assert outcomes["failing.yaml"] == ("failed", "sluice run: task only failed: step s exited with code 4")


def test_without_examples_it_is_skipped_with_a_message() -> None:
    done = benchmark("--quick")
    assert done.returncode == 0
    assert done.stdout == ""
    assert "tekton-conformance: skipped (give --examples DIR" in done.stderr
