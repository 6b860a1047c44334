"""`{{ outputs.NAME.path }}` in container steps, and the steps the compiler puts around them."""

from __future__ import annotations

from controller.compiler import compile_run
from controller.spec import load_workflow_text


def _tasks(steps: str) -> dict:
    text = (
        f"apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {{name: outs}}\nspec:\n  steps:\n{steps}"
    )
    run = compile_run(load_workflow_text(text, "outs.yaml"))
    return {t["name"]: t for t in run["spec"]["pipelineSpec"]["tasks"]}


def test_paths_render_to_the_result_file_and_the_artifact_directory() -> None:
    tasks = _tasks("""
    - name: make
      image: busybox
      command: [sh, -c, 'ls "$1"', sh, "{{ outputs.table.path }}"]
      args: ["{{ outputs.rows.path }}"]
      env: {OUT: "{{ outputs.table.path }}/x"}
      outputs: [{name: table, type: dataset}, {name: rows, type: number}]
""")
    spec = tasks["make"]["taskSpec"]
    prepare, user, check = spec["steps"]
    table = "$(workspaces.artifacts.path)/make/table"
    assert user["command"][-1] == table and user["args"] == ["$(results.rows.path)"]
    assert {"name": "OUT", "value": f"{table}/x"} in user["env"]
    assert [w["name"] for w in spec["workspaces"]] == ["artifacts"]
    assert prepare["name"] == "prepare-outputs"
    assert prepare["command"] == ["python", "-m", "stages.outputs"]
    assert prepare["args"] == ["prepare", "--directory", f"table={table}"]
    assert check["name"] == "check-outputs"
    assert check["args"] == [
        "check", "--step", "make",
        "--result", "table=$(results.table.path)", "--directory", f"table={table}",
        "--result", "rows=$(results.rows.path)",
    ]  # fmt: skip
    assert prepare["securityContext"] == user["securityContext"] == check["securityContext"]
    assert all(s["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}] for s in spec["steps"])


def test_scalar_outputs_need_no_prepare_step_and_no_outputs_need_none() -> None:
    tasks = _tasks("""
    - {name: score, image: busybox, script: 'echo 1 > {{ outputs.s.path }}', outputs: [{name: s}]}
    - {name: plain, image: busybox, script: 'echo hi'}
""")
    assert [s["name"] for s in tasks["score"]["taskSpec"]["steps"]] == ["score", "check-outputs"]
    assert tasks["score"]["taskSpec"]["steps"][0]["script"] == "echo 1 > $(results.s.path)"
    assert [s["name"] for s in tasks["plain"]["taskSpec"]["steps"]] == ["plain"]


def test_a_step_named_like_an_internal_step_keeps_its_name() -> None:
    tasks = _tasks("""
    - {name: check-outputs, image: busybox, script: 'echo 1 > {{ outputs.s.path }}', outputs: [{name: s}]}
""")
    names = [s["name"] for s in tasks["check-outputs"]["taskSpec"]["steps"]]
    assert names == ["check-outputs", "sluice-check-outputs"]
