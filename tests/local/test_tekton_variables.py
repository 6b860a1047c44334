"""Tekton v1 variable semantics (docs/variables.md, pipelines.md, pipelineruns.md), run for real.

Each test is one rule with the outcome Tekton's docs give: values reaching steps, runs that must
fail, and references refused before any step runs (nothing laid out under the run folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import pipelinerun, run_local, script_task
from tests.local.test_tekton_documents import nothing_ran, run_json, write

ARGS = 'printf "%s|" "$@" > $(results.out.path)'  # each argument of the step, '|'-terminated


def args_task(name: str, args: list[str], **extra: Any) -> dict[str, Any]:
    """A task whose one step records its arguments, one per `|`, as result `out`."""
    spec: dict[str, Any] = {
        "results": [{"name": "out"}],
        "steps": [{"name": "s", "image": "busybox", "command": ["sh", "-c", ARGS, "sh", *args]}],
    }
    for key in ("params", "workspaces"):
        if key in extra:
            spec[key] = extra.pop(key)
    return {"name": name, "taskSpec": spec, **extra}


def refused(run: dict[str, Any], home: Path, match: str) -> None:
    with pytest.raises(UnsupportedError, match=match):
        run_local(run, home)
    assert not (home / "runs" / run["metadata"]["name"]).exists(), "refused before anything ran"


def test_array_result_star_reaches_a_step_as_separate_arguments(home: Path) -> None:
    writer = script_task(
        "w",
        """printf '["a", "b c", "d"]' > $(results.arr.path)""",
        results=[{"name": "arr", "type": "array"}],
    )
    reader = args_task("r", ["first", "$(tasks.w.results.arr[*])", "$(tasks.w.results.arr[1])"])
    record = run_local(pipelinerun("arr-star", [writer, reader]), home)
    assert record.phase == "Succeeded", record.message
    assert record.tasks["r"].results["out"] == "first|a|b c|d|b c|"


def test_array_params_expand_index_and_bracket_names(home: Path) -> None:
    task = args_task(
        "t",
        ["$(params.list[*])", "$(params['list'][0])", '$(params["dotted.name"])', "$(params.list[2])"],
        params=[{"name": "list", "type": "array"}, {"name": "dotted.name"}],
    )
    task["params"] = [
        {"name": "list", "value": ["$(params.outer[*])", "z"]},
        {"name": "dotted.name", "value": "D"},
    ]
    run = pipelinerun("arr-param", [task], params=[{"name": "outer", "type": "array"}])
    run["spec"]["params"] = [{"name": "outer", "value": ["x", "y"]}]
    record = run_local(run, home)
    assert record.tasks["t"].results["out"] == "x|y|z|x|D|z|", record.tasks["t"].message


def test_index_out_of_range_is_refused_before_running(home: Path) -> None:
    task = args_task("t", ["$(params.list[3])"], params=[{"name": "list", "type": "array", "default": ["a"]}])
    refused(
        pipelinerun("oob", [task]), home, r"steps\[0\]\.command\[4\]: \$\(params.list\[3\]\) is out of range"
    )


def test_array_inside_a_string_is_refused(home: Path) -> None:
    task = script_task(
        "t", "echo $(params.list[*])", params=[{"name": "list", "type": "array", "default": ["a"]}]
    )
    refused(pipelinerun("in-string", [task]), home, r"script: \$\(params.list\[\*\]\) is an array or object")


def test_object_params_keys_whole_objects_and_propagation(home: Path) -> None:
    props = {"url": {"type": "string"}, "commit": {"type": "string"}}
    inner = args_task(
        "t",
        ["$(params.repo.url)", "$(params.repo.commit)", "$(params.gitrepo.branch)"],
        params=[{"name": "repo", "type": "object", "properties": props}],
    )
    # the whole object passed on, and an object param propagated with the inner scope's value winning
    inner["params"] = [
        {"name": "repo", "value": "$(params.gitrepo[*])"},
        {"name": "gitrepo", "value": {"branch": "main", "url": "xyz.com"}},
    ]
    run = pipelinerun("obj", [inner], params=[{"name": "gitrepo", "type": "object", "properties": props}])
    run["spec"]["params"] = [{"name": "gitrepo", "value": {"url": "abc.com", "commit": "sha123"}}]
    record = run_local(run, home)
    assert record.phase == "Succeeded", record.message
    assert record.tasks["t"].results["out"] == "abc.com|sha123|main|"


def test_object_results_with_properties_and_typed_pipeline_results(home: Path) -> None:
    writer = script_task(
        "w",
        """printf '{"url": "u", "digest": "d"}' > $(results.img.path)
printf '["1", "2"]' > $(results.arr.path)""",
        results=[
            {"name": "img", "type": "object", "properties": {"url": {"type": "string"}, "digest": {}}},
            {"name": "arr", "type": "array"},
        ],
    )
    reader = args_task("r", ["$(tasks.w.results.img.url)", "$(tasks.w.results.arr[1])"])
    results = [
        {"name": "whole", "type": "object", "value": "$(tasks.w.results.img[*])"},
        {"name": "list", "type": "array", "value": "$(tasks.w.results.arr[*])"},
        {
            "name": "built",
            "type": "array",
            "value": ["$(tasks.w.results.img.digest)", "$(tasks.r.results.out)"],
        },
    ]
    record = run_local(pipelinerun("obj-res", [writer, reader], results=results), home)
    assert record.phase == "Succeeded", record.message
    assert record.tasks["r"].results["out"] == "u|2|"
    assert record.outputs == {
        "whole": {"url": "u", "digest": "d"},
        "list": ["1", "2"],
        "built": ["d", "u|2|"],
    }


@pytest.mark.parametrize(
    ("declared", "written", "why"),
    [
        ({"type": "array"}, "a,b", "declared array but was written as string"),
        ({"type": "string"}, '["a"]', "declared string but was written as array"),
        ({"type": "object", "properties": {"k": {}, "j": {}}}, '{"k": "v"}', "has no key 'j'"),
    ],
)
def test_a_result_not_of_its_declared_type_fails_the_task(
    home: Path, declared: dict[str, Any], written: str, why: str
) -> None:
    task = script_task("w", f"printf '{written}' > $(results.r.path)", results=[{"name": "r", **declared}])
    record = run_local(pipelinerun("typed", [task]), home)
    assert record.phase == "Failed"
    assert record.tasks["w"].reason == "FailedValidation"  # Tekton's reason (validateTaskRunResults)
    assert why in record.tasks["w"].message


def test_params_propagate_into_embedded_specs_with_scope_precedence(home: Path) -> None:
    implicit = args_task("implicit", ["$(params.HELLO)"])  # neither declared nor passed
    default_only = args_task(
        "default", ["$(params.HELLO)"], params=[{"name": "HELLO", "default": "task default"}]
    )
    passed = args_task("passed", ["$(params.HELLO)"], params=[{"name": "HELLO"}])
    passed["params"] = [{"name": "HELLO", "value": "inner"}]
    run = pipelinerun("prop", [implicit, default_only, passed])
    run["spec"]["params"] = [{"name": "HELLO", "value": "run value"}]  # not declared by the pipeline
    record = run_local(run, home)
    assert record.phase == "Succeeded", record.message
    # the runtime value beats a task's default; a value the pipeline task passes beats both
    assert [record.tasks[t].results["out"] for t in ("implicit", "default", "passed")] == [
        "run value|",
        "run value|",
        "inner|",
    ]


def test_results_and_workspaces_propagate_into_embedded_specs(home: Path) -> None:
    first = script_task("first", "echo hi > $(workspaces.shared.path)/f; printf 7 > $(results.n.path)")
    first["taskSpec"]["results"] = [{"name": "n"}]
    second = args_task("second", ["$(tasks.first.results.n)", "$(workspaces.shared.bound)"])
    second["taskSpec"]["steps"].append(
        {"name": "read", "image": "busybox", "script": 'test "$(cat $(workspaces.shared.path)/f)" = hi'}
    )
    run = pipelinerun("ws-prop", [first, second])  # the workspace is only bound by the run
    run["spec"]["workspaces"] = [{"name": "shared", "emptyDir": {}}]
    run["spec"]["workspaces"][0] = {"name": "shared", "volumeClaimTemplate": {"spec": {}}}
    record = run_local(run, home)
    assert record.phase == "Succeeded", record.message
    assert record.tasks["second"].results["out"] == "7|true|"


def test_finally_results_in_pipeline_results_and_omission(home: Path) -> None:
    work = script_task("work", "printf W > $(results.r.path)", results=[{"name": "r"}])
    skipped = script_task("skipped", "printf S > $(results.r.path)", results=[{"name": "r"}])
    skipped["when"] = [{"input": "a", "operator": "in", "values": ["b"]}]
    final = script_task("fin", 'printf "F-$(params.seen)" > $(results.r.path)', results=[{"name": "r"}])
    final["params"] = [{"name": "seen", "value": "$(tasks.work.results.r)"}]
    results = [
        {"name": "from-finally", "value": "$(finally.fin.results.r)"},
        {"name": "from-skipped", "value": "$(tasks.skipped.results.r)"},
    ]
    record = run_local(pipelinerun("fin-res", [work, skipped], results=results, **{"finally": [final]}), home)
    assert record.phase == "Succeeded", record.message
    assert record.outputs == {"from-finally": "F-W"}  # a task that did not run: its result omitted


def test_a_succeeded_task_without_a_referenced_result_fails_the_run(home: Path) -> None:
    quiet = script_task("quiet", "true", results=[{"name": "r"}])
    record = run_local(
        pipelinerun("no-res", [quiet], results=[{"name": "x", "value": "$(tasks.quiet.results.r)"}]), home
    )
    assert record.phase == "Failed"
    assert "the referenced results don't exist" in record.message
    assert record.outputs == {}


def test_pipeline_result_naming_an_undeclared_result_is_refused(home: Path) -> None:
    task = script_task("t", "true", results=[{"name": "r"}])
    run = pipelinerun("undeclared", [task], results=[{"name": "x", "value": "$(tasks.t.results.nope)"}])
    refused(run, home, r"results\[0\]\.value: unknown variable \$\(tasks.t.results.nope\)")


def test_every_context_variable_also_in_defaults(home: Path) -> None:
    task = args_task(
        "t",
        [
            "$(params.from-default)",
            "$(params.retries)",
            "$(context.pipeline.name)",
            "$(context.pipelineRun.namespace)",
            "$(context.taskRun.name)",
            "$(context.taskRun.namespace)",
            "$(context.task.name)",
            "$(context.task.retry-count)",
            "$(params.task-default)",
        ],
        params=[{"name": "task-default", "default": "tr=$(context.taskRun.name)"}],
    )
    task["retries"] = 2
    task["params"] = [{"name": "retries", "value": "$(context.pipelineTask.retries)"}]
    run = pipelinerun(
        "ctx", [task], params=[{"name": "from-default", "default": "pr=$(context.pipelineRun.name)"}]
    )
    record = run_local(run, home)
    assert record.phase == "Succeeded", record.message
    assert record.tasks["t"].results["out"] == "pr=ctx|2|ctx|default|ctx-t|default|t|0|tr=ctx-t|"


def test_uids_are_uuids_fixed_per_run(home: Path) -> None:
    task = args_task("t", ["$(context.pipelineRun.uid)", "$(context.taskRun.uid)"])
    out = run_local(pipelinerun("uids", [task]), home).tasks["t"].results["out"].split("|")
    assert len(out[0]) == 36 and len(out[1]) == 36 and out[0] != out[1]


def test_deprecated_inputs_params_form_is_substituted(home: Path) -> None:
    task = args_task("t", ["$(inputs.params.p)"], params=[{"name": "p", "default": "old form"}])
    assert run_local(pipelinerun("inputs", [task]), home).tasks["t"].results["out"] == "old form|"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("$(artifacts.path)", "Tekton artifacts"),
        ("$(credentials.path)", "service account"),
        ("$(steps.step-nope.exitCode.path)", "unknown variable"),
        ("$(step.results.r.path)", "this step declares no result 'r'"),
        ("$(steps.main.results.r)", "step results can be used only in a step's env, command and args"),
        ("$(inputs.params.nope)", "unknown variable"),
        ("$(inputs.resources.src.path)", "PipelineResources were removed"),
        ("$(tasks.status)", "only in a pipeline task's params, when and displayName"),
        ("$(context.pipelineTask.retries)", "pass it to the task as a param"),
        ("$(context.taskRun.nope)", "unknown variable"),
        ("$(workspaces.nope.path)", "unknown variable"),
        ("$(results.nope.path)", "unknown variable"),
    ],
)
def test_unknown_or_unimplemented_variables_are_refused_before_running(
    home: Path, text: str, why: str
) -> None:
    task = script_task("t", f"echo {text} $(date) $(HOME)")  # shell and env forms are not Tekton's
    refused(pipelinerun("unknown", [task]), home, rf"tasks\[0\]\.taskSpec\.steps\[0\]\.script: .*{why}")


def test_status_variables_outside_finally_are_refused(home: Path) -> None:
    first = script_task("a", "true")
    second = args_task("b", ["$(params.s)"])
    second["params"] = [{"name": "s", "value": "$(tasks.a.status)"}]
    refused(pipelinerun("status", [first, second]), home, r"tasks\[1\]\.params\[0\]\.value: .*tasks.a.status")


def test_values_are_substituted_once(home: Path) -> None:
    """A value holding `$(...)` text is data: Tekton's replacer does not substitute it again."""
    task = args_task("t", ["$(params.p)"], params=[{"name": "p"}])
    task["params"] = [{"name": "p", "value": "$(params.q)"}]
    run = pipelinerun("once", [task], params=[{"name": "q"}])
    run["spec"]["params"] = [{"name": "q", "value": "$(context.taskRun.name) $(rm -rf x)"}]
    record = run_local(run, home)
    assert record.tasks["t"].results["out"] == "$(context.taskRun.name) $(rm -rf x)|"
    saved = json.loads((home / "runs/once/run.json").read_text())
    assert saved["phase"] == "Succeeded"


# ---- referenced specs: Tekton propagates nothing from the pipeline into a Task by taskRef ----------

REFERENCED_TASK = """
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: echo-hello}
spec:
  workspaces: [{name: shared}]
  steps:
    - {name: s, image: alpine, script: "echo $(params.HELLO) > $(workspaces.shared.path)/f"}
"""
RUN_OF_REFERENCED = """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: referenced}
spec:
  params: [{name: HELLO, value: hi}]
  workspaces: [{name: shared, emptyDir: {}}]
  pipelineSpec:
    tasks:
      - {name: t, taskRef: {name: echo-hello}, workspaces: [{name: shared}]}
"""


def test_params_do_not_propagate_into_a_referenced_task(tmp_path: Path) -> None:
    """docs/pipelineruns.md "Referenced Resources": the run fails in Tekton; refused here."""
    path = write(tmp_path, "ref.yaml", REFERENCED_TASK, RUN_OF_REFERENCED)
    result, _ = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 1
    assert "unknown variable $(params.HELLO)" in result.output
    assert nothing_ran(tmp_path / "home")


def test_a_referenced_task_gets_what_is_passed_and_bound_explicitly(tmp_path: Path) -> None:
    task = REFERENCED_TASK.replace(
        "workspaces: [{name: shared}]", "params: [{name: HELLO}]\n  workspaces: [{name: shared}]"
    )
    run = RUN_OF_REFERENCED.replace(
        "workspaces: [{name: shared}]}",
        "workspaces: [{name: shared}], params: [{name: HELLO, value: $(params.HELLO)}]}",
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "ref.yaml", task, run)))
    assert result.exit_code == 0, result.output
    assert data["phase"] == "Succeeded"


def test_kubernetes_expands_declared_env_in_command_and_args_after_tekton(home: Path) -> None:
    """The kubelet's `$(VAR)` expansion: declared env only, `$$` escapes, unknown names kept."""
    task = args_task("t", ["$(FOO)", "$$(FOO)", "$(HOME)", "a$$b", "$(params.p)"], params=[{"name": "p"}])
    task["params"] = [{"name": "p", "value": "$(FOO)"}]  # a Tekton value is expanded by the kubelet too
    task["taskSpec"]["steps"][0]["env"] = [{"name": "FOO", "value": "bar"}]
    record = run_local(pipelinerun("kube", [task]), home)
    assert record.tasks["t"].results["out"] == "bar|$(FOO)|$(HOME)|a$b|bar|", record.tasks["t"].message


def test_a_secret_variable_in_args_is_refused(home: Path) -> None:
    """A process's arguments are visible to every user of the machine: a secret stays in the env."""
    (home / "secrets.yaml").write_text("creds: {token: s3cr3t-value}\n")
    task = args_task("t", ["$(TOKEN)"])
    ref = {"secretKeyRef": {"name": "creds", "key": "token"}}
    task["taskSpec"]["steps"][0]["env"] = [{"name": "TOKEN", "valueFrom": ref}]
    record = run_local(pipelinerun("kube-secret", [task]), home)
    assert record.phase == "Failed"
    assert "$(TOKEN) holds a secret" in record.tasks["t"].message
    assert "s3cr3t-value" not in (home / "runs/kube-secret/run.json").read_text()
