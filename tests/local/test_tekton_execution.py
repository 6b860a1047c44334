"""Tekton execution semantics of the local executor (steps, stepTemplate, onError, timeouts, statuses),
each checked against the outcome Tekton's docs give, on PipelineRuns run for real."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local import readonly
from controller.executors.local.runprint import print_run
from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import pipelinerun, run_local, script_task


def _task(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A pipeline task; `task_params` are the pipeline task's params, the other keys go in its taskSpec."""
    extra = {k: spec.pop(k) for k in ("timeout", "retries", "when", "runAfter", "displayName") if k in spec}
    if "task_params" in spec:
        extra["params"] = spec.pop("task_params")
    return {"name": name, "taskSpec": {"steps": steps, **spec}, **extra}


def test_step_template_merges_env_by_name_command_and_working_dir(home: Path, tmp_path: Path) -> None:
    template = {
        "env": [{"name": "FOO", "value": "bar"}, {"name": "TOKEN", "value": "public"}],
        "command": ["sh", "-c"],
        "workingDir": str(tmp_path),
    }
    steps = [
        {"name": "plain", "image": "x", "args": ['printf "$FOO $TOKEN $(pwd)" > $(results.plain.path)']},
        {
            "name": "override",
            "image": "x",
            "env": [{"name": "FOO", "value": "baz"}],
            "workingDir": "/",
            "args": ['printf "$FOO $TOKEN $(pwd)" > $(results.override.path)'],
        },
        {"name": "own-command", "image": "x", "command": ["printf"], "args": ["no shell: $FOO"]},
    ]
    task = _task("t", steps, stepTemplate=template, results=[{"name": "plain"}, {"name": "override"}])
    record = run_local(pipelinerun("template", [task]), home)
    assert record.phase == "Succeeded", record.tasks["t"].message
    assert record.tasks["t"].results == {"plain": f"bar public {tmp_path}", "override": "baz public /"}
    assert "no shell: $FOO" in (home / "runs/template/logs/t.log").read_text()


def test_on_error_from_a_param_exit_codes_recorded_and_readable(home: Path) -> None:
    steps = [
        {"name": "exit-with-1", "image": "x", "onError": "$(params.CONTINUE)", "script": "exit 1"},
        {"image": "x", "onError": "continue", "script": "exit 11"},  # unnamed: step-unnamed-1
        {
            "name": "read",
            "image": "x",
            "script": "printf '%s,%s' $(cat $(steps.step-exit-with-1.exitCode.path))"
            " $(cat $(steps.step-unnamed-1.exitCode.path)) > $(results.codes.path)",
        },
    ]
    task = _task(
        "t",
        steps,
        params=[{"name": "CONTINUE"}],
        results=[{"name": "codes"}],
        task_params=[{"name": "CONTINUE", "value": "$(params.CONTINUE)"}],
    )
    obj = pipelinerun("onerror", [task], params=[{"name": "CONTINUE", "default": "continue"}])
    record = run_local(obj, home)
    assert record.phase == "Succeeded", record.tasks["t"].message
    assert record.tasks["t"].results == {"codes": "1,11"}
    assert record.tasks["t"].exit_codes == {"exit-with-1": 1, "unnamed-1": 11, "read": 0}
    saved = json.loads((home / "runs/onerror/run.json").read_text())
    assert saved["steps"][0]["exitCodes"]["exit-with-1"] == 1

    obj = pipelinerun("onerror-stop", [task], params=[{"name": "CONTINUE", "default": "stopAndFail"}])
    record = run_local(obj, home)
    assert record.phase == "Failed"
    assert record.tasks["t"].message == "step exit-with-1 exited with code 1"
    assert "read" not in record.tasks["t"].exit_codes  # the steps after it never ran


def test_on_error_invalid_after_substitution_fails_the_task_and_literal_is_refused(home: Path) -> None:
    step = {"name": "s", "image": "x", "onError": "$(params.mode)", "script": "true"}
    task = _task("t", [step], params=[{"name": "mode", "default": "sometimes"}])
    record = run_local(pipelinerun("bad-onerror", [task]), home)
    assert (record.phase, record.tasks["t"].phase) == ("Failed", "Failed")
    assert "onError: 'sometimes' is not continue or stopAndFail" in record.tasks["t"].message
    assert record.tasks["t"].exit_codes == {}  # nothing ran

    literal = _task("t", [{**step, "onError": "ignore"}])
    with pytest.raises(UnsupportedError, match=r"steps\[0\]\.onError: 'ignore'"):
        run_local(pipelinerun("literal-onerror", [literal]), home)
    assert not (home / "runs/literal-onerror").exists()


def test_display_name_is_substituted_and_shown_in_the_summary(home: Path) -> None:
    task = _task(
        "build",
        [{"name": "s", "image": "x", "script": "true"}],
        displayName="Build for $(params.os)",
    )
    record = run_local(pipelinerun("shown", [task], params=[{"name": "os", "default": "linux"}]), home)
    assert record.tasks["build"].display_name == "Build for linux"
    out = io.StringIO()
    print_run(record.to_json(), out, detail=False)
    assert "Build for linux" in out.getvalue().splitlines()[1]


def test_task_run_specs_timeout_overrides_the_pipeline_task_timeout(home: Path) -> None:
    slow = _task("slow", [{"name": "s", "image": "x", "script": "sleep 30"}], timeout="60s")
    obj = pipelinerun("override", [slow], taskRunSpecs=[{"pipelineTaskName": "slow", "timeout": "1s"}])
    started = time.monotonic()
    record = run_local(obj, home)
    assert time.monotonic() - started < 10
    assert (record.phase, record.reason) == ("Failed", "Failed")
    assert record.tasks["slow"].reason == "TaskRunTimeout"
    assert "failed to finish within 1s" in record.tasks["slow"].message


def test_step_timeout_fails_the_task_and_skips_the_later_steps(home: Path) -> None:
    steps = [
        {"name": "slow", "image": "x", "timeout": "1s", "script": "sleep 30"},
        {"name": "after", "image": "x", "script": "echo never"},
    ]
    record = run_local(pipelinerun("step-timeout", [_task("t", steps)]), home)
    assert (record.tasks["t"].phase, record.tasks["t"].reason) == ("Failed", "Failed")
    assert record.tasks["t"].message == "step slow timed out"
    assert "never" not in (home / "runs/step-timeout/logs/t.log").read_text()


def test_pipeline_timeout_cancels_running_tasks_and_starts_no_finally(home: Path) -> None:
    obj = pipelinerun(
        "pipeline-timeout",
        [script_task("slow", "sleep 30"), script_task("later", "true", runAfter=["slow"])],
        **{"finally": [script_task("cleanup", "true")]},
        timeouts={"pipeline": "1s"},
    )
    started = time.monotonic()
    record = run_local(obj, home)
    assert time.monotonic() - started < 10
    assert (record.phase, record.reason) == ("Failed", "PipelineRunTimeout")
    assert (record.tasks["slow"].phase, record.tasks["slow"].reason) == ("Failed", "TaskRunCancelled")
    assert (record.tasks["later"].phase, record.tasks["later"].reason) == ("Skipped", "PipelineTimedOut")
    assert (record.tasks["cleanup"].phase, record.tasks["cleanup"].reason) == ("Skipped", "PipelineTimedOut")


def _with_params(task: dict[str, Any], **values: str) -> dict[str, Any]:
    """`task` passed `values` as params (undeclared params reach an embedded spec, as in Tekton)."""
    return {**task, "params": [{"name": k, "value": v} for k, v in values.items()]}


def _report(result: str, **params: str) -> dict[str, Any]:
    """A finally task `report` that writes its `params`' values, space-separated in their order, to
    its result `result`: Tekton substitutes task statuses and reasons in a finally task's params
    (and `when`) only, so that is how a test reads them."""
    words = " ".join(f"$(params.{name})" for name in params)
    task = script_task("report", f"printf '{words}' > $(results.{result}.path)", results=[{"name": result}])
    return _with_params(task, **params)


def test_tasks_timeout_skips_unstarted_tasks_and_runs_finally(home: Path) -> None:
    obj = pipelinerun(
        "tasks-timeout",
        [script_task("slow", "sleep 30"), script_task("later", "true", runAfter=["slow"])],
        **{
            "finally": [
                _report(
                    "s", all="$(tasks.status)", slow="$(tasks.slow.status)", later="$(tasks.later.status)"
                )
            ]
        },
        timeouts={"pipeline": "1m", "tasks": "1s", "finally": "20s"},
    )
    record = run_local(obj, home)
    assert (record.phase, record.reason) == ("Failed", "PipelineRunTimeout")
    assert record.tasks["later"].reason == "TasksTimedOut"
    assert record.tasks["report"].results == {"s": "Failed Failed None"}


def test_tasks_status_completed_and_when_on_statuses_in_finally(home: Path) -> None:
    tasks = [
        script_task("task1", "true"),
        script_task("task2", "exit 0", when=[{"input": "true", "operator": "notin", "values": ["true"]}]),
    ]
    final = [
        _with_params(
            script_task(
                "on-completed",
                "printf '$(params.one) $(params.two)' > $(results.s.path)",
                results=[{"name": "s"}],
                when=[{"input": "$(tasks.status)", "operator": "in", "values": ["Completed"]}],
            ),
            one="$(tasks.task1.status)",
            two="$(tasks.task2.status)",
        ),
        script_task(
            "on-failure",
            "true",
            when=[{"input": "$(tasks.task1.status)", "operator": "in", "values": ["Failed"]}],
        ),
    ]
    record = run_local(pipelinerun("statuses", tasks, **{"finally": final}), home)
    assert (record.phase, record.reason) == ("Succeeded", "Completed")
    assert record.tasks["on-completed"].results == {"s": "Succeeded None"}
    assert (record.tasks["on-failure"].phase, record.tasks["on-failure"].reason) == (
        "Skipped",
        "WhenExpressionsFalse",
    )


def test_read_only_workspace_cannot_be_written_by_a_host_step_even_as_root(home: Path) -> None:
    def ws_task(name: str, script: str, read_only: bool, **extra: Any) -> dict[str, Any]:
        task = script_task(name, script, workspaces=[{"name": "data", "readOnly": read_only}], **extra)
        task["workspaces"] = [{"name": "data", "workspace": "shared"}]
        return task

    tasks = [
        ws_task("writer", "echo written > $(workspaces.data.path)/file", False),
        ws_task(
            "reader",
            "cat $(workspaces.data.path)/file > $(results.seen.path)",
            True,
            results=[{"name": "seen"}],
            runAfter=["writer"],
        ),
        ws_task(
            "sneaky",
            "mount -o remount,rw $(workspaces.data.path) || true\n"
            "echo changed > $(workspaces.data.path)/file",
            True,
            runAfter=["reader"],
        ),
    ]
    obj = pipelinerun("read-only", tasks, workspaces=[{"name": "shared"}])
    obj["spec"]["workspaces"] = [{"name": "shared", "volumeClaimTemplate": {"spec": {}}}]
    record = run_local(obj, home)
    assert record.tasks["writer"].phase == "Succeeded"
    assert record.tasks["reader"].results == {"seen": "written\n"}
    assert record.tasks["sneaky"].phase == "Failed"
    assert "Read-only file system" in (home / "runs/read-only/logs/sneaky.log").read_text()
    assert (home / "runs/read-only/workspaces/shared/file").read_text() == "written\n"


def test_read_only_workspace_refused_before_anything_runs_without_namespaces(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = script_task("reader", "true", workspaces=[{"name": "data", "readOnly": True}])
    task["workspaces"] = [{"name": "data", "workspace": "shared"}]
    obj = pipelinerun("no-userns", [task], workspaces=[{"name": "shared"}])
    obj["spec"]["workspaces"] = [{"name": "shared", "emptyDir": {}}]
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without util-linux's unshare and mount
    readonly.unavailable.cache_clear()
    try:
        with pytest.raises(UnsupportedError, match=r"workspaces\[0\]\.readOnly: .*run with --containers"):
            run_local(obj, home)
    finally:
        readonly.unavailable.cache_clear()
    assert not (home / "runs/no-userns").exists()


def test_parameterized_sub_path_and_optional_workspace_bound_at_pipeline_level(home: Path) -> None:
    writer = script_task("writer", "echo hi > $(workspaces.out.path)/f", workspaces=[{"name": "out"}])
    writer["workspaces"] = [{"name": "out", "workspace": "ws", "subPath": "$(params.dir)"}]
    bound = script_task(
        "bound",
        "printf '%s %s' $(params.a) $(params.b) > $(results.r.path)",
        params=[{"name": "a"}, {"name": "b"}],
        results=[{"name": "r"}],
    )
    bound["params"] = [
        {"name": "a", "value": "$(workspaces.ws.bound)"},
        {"name": "b", "value": "$(workspaces.extra.bound)"},
    ]
    escape = script_task("escape", "true", workspaces=[{"name": "out"}], runAfter=["writer"])
    escape["workspaces"] = [{"name": "out", "workspace": "ws", "subPath": "$(params.up)"}]
    obj = pipelinerun(
        "subpaths",
        [writer, bound, escape],
        workspaces=[{"name": "ws"}, {"name": "extra", "optional": True}],
        params=[{"name": "dir", "default": "dir-2"}, {"name": "up", "default": "../.."}],
    )
    obj["spec"]["workspaces"] = [{"name": "ws", "volumeClaimTemplate": {"spec": {}}}]
    record = run_local(obj, home)
    assert (home / "runs/subpaths/workspaces/ws/dir-2/f").read_text() == "hi\n"
    assert record.tasks["bound"].results == {"r": "true false"}
    assert record.tasks["escape"].phase == "Failed"
    assert "subPath '../..' must be a relative path without '..'" in record.tasks["escape"].message


def test_script_without_shebang_takes_double_brackets_and_double_equals_like_busybox(home: Path) -> None:
    script = (
        'if [[ "$(params.x)" == "123" ]] && [ "$(params.x)" == 123 ]; then echo -n ok > $(results.r.path); fi'
    )
    task = script_task("t", script, params=[{"name": "x", "default": "123"}], results=[{"name": "r"}])
    task["taskSpec"]["steps"][0]["displayName"] = "Check the value"  # a step's displayName is accepted
    record = run_local(pipelinerun("shell", [task]), home)
    assert record.tasks["t"].results == {"r": "ok"}


def test_finally_reads_task_reasons(home: Path) -> None:
    obj = pipelinerun(
        "reasons",
        [script_task("ok", "true"), script_task("slow", "sleep 30", timeout="1s")],
        **{"finally": [_report("r", ok="$(tasks.ok.reason)", slow="$(tasks.slow.reason)")]},
    )
    record = run_local(obj, home)
    assert record.tasks["report"].results == {"r": "Succeeded TaskRunTimeout"}


@pytest.mark.parametrize(
    ("timeouts", "message"),
    [
        (
            {"pipeline": "1m", "tasks": "50s", "finally": "20s"},
            r"timeouts\.pipeline: 1m is less than tasks \+ finally",
        ),
        ({"pipeline": "1m", "tasks": "0"}, r"timeouts\.tasks: 0 \(no timeout\) needs timeouts\.pipeline 0"),
    ],
)
def test_inconsistent_timeouts_are_refused_as_tekton_refuses_them(
    home: Path, timeouts: dict[str, str], message: str
) -> None:
    with pytest.raises(UnsupportedError, match=message):
        run_local(pipelinerun("bad-timeouts", [script_task("t", "true")], timeouts=timeouts), home)


def test_busybox_ash_shebang_runs_where_ash_is_not_installed(home: Path) -> None:
    shells = [
        "#!/usr/bin/env ash\nprintf a >> $(results.r.path)",
        "#!/bin/ash\n[[ 1 == 1 ]] && printf b >> $(results.r.path)",
    ]
    task = script_task("t", shells[0], results=[{"name": "r"}])
    task["taskSpec"]["steps"].append({"name": "second", "image": "alpine", "script": shells[1]})
    record = run_local(pipelinerun("ash", [task]), home)
    assert record.tasks["t"].results == {"r": "ab"}


def test_workspace_kinds_emptydir_per_task_claim_template_per_run_claim_kept(home: Path) -> None:
    def ws_task(name: str, script: str, **extra: Any) -> dict[str, Any]:
        task = script_task(name, script, workspaces=[{"name": "w"}], results=[{"name": "seen"}], **extra)
        task["workspaces"] = [{"name": "w", "workspace": "shared"}]
        return task

    probe = (
        "ls $(workspaces.w.path) | tr '\\n' , > $(results.seen.path)\n"
        "touch $(workspaces.w.path)/$(context.taskRun.name)"
    )

    def run(name: str, binding: dict[str, Any]) -> Any:
        obj = pipelinerun(
            name,
            [ws_task("first", probe), ws_task("second", probe, runAfter=["first"])],
            workspaces=[{"name": "shared"}],
        )
        obj["spec"]["workspaces"] = [{"name": "shared", **binding}]
        return run_local(obj, home, use_cache=False)

    empty = run("empty", {"emptyDir": {}})  # one pod's volume: the second task never sees the first's file
    assert (empty.tasks["first"].results, empty.tasks["second"].results) == ({"seen": ""}, {"seen": ""})
    claim = {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}
    fresh = [run(f"fresh-{i}", claim) for i in (1, 2)]  # shared by the run's tasks, new for each run
    assert [r.tasks["second"].results["seen"] for r in fresh] == ["fresh-1-first,", "fresh-2-first,"]
    kept = [run(f"kept-{i}", {"persistentVolumeClaim": {"claimName": "data"}}) for i in (1, 2)]
    assert kept[1].tasks["first"].results["seen"] == "kept-1-first,kept-1-second,"  # the claim outlives a run


def test_a_read_only_volume_mount_at_tmp_is_read_only_for_that_step_only(home: Path) -> None:
    def step(name: str, script: str, read_only: bool) -> dict[str, Any]:
        mount = {"name": "tmp", "mountPath": "/tmp", "readOnly": read_only}
        return {"name": name, "image": "x", "script": script, "volumeMounts": [mount]}

    steps = [
        step("write", 'printf note > "$TMPDIR/note"', False),
        step("read", 'echo "read: $(cat "$TMPDIR/note")"', True),
        step("write-again", 'printf more >> "$TMPDIR/note"', True),
    ]
    task = _task("t", steps, volumes=[{"name": "tmp", "emptyDir": {}}])
    record = run_local(pipelinerun("ro-tmp", [task]), home)
    assert record.tasks["t"].message == "step write-again exited with code 1"
    log = (home / "runs/ro-tmp/logs/t.log").read_text()
    assert "read: note" in log and "Read-only file system" in log


def test_a_pipeline_task_on_error_continue_fails_alone_and_keeps_its_results(home: Path) -> None:
    tasks = [
        script_task(
            "flaky", "printf 123 > $(results.r.path); exit 1", results=[{"name": "r"}, {"name": "never"}]
        )
        | {"onError": "continue"},
        script_task("after", "true", runAfter=["flaky"]),
        script_task(
            "uses",
            "printf '%s' $(params.v) > $(results.got.path)",
            params=[{"name": "v"}],
            results=[{"name": "got"}],
        )
        | {"params": [{"name": "v", "value": "$(tasks.flaky.results.r)"}]},
        script_task("wants-missing", "true", params=[{"name": "v"}])
        | {"params": [{"name": "v", "value": "$(tasks.flaky.results.never)"}], "onError": "continue"},
    ]
    final = [_report("s", s="$(tasks.flaky.status)", r="$(tasks.flaky.reason)")]
    record = run_local(pipelinerun("ignored", tasks, **{"finally": final}), home)
    assert record.phase == "Succeeded"
    assert (record.tasks["flaky"].phase, record.tasks["flaky"].reason) == ("Failed", "FailureIgnored")
    assert record.tasks["after"].phase == "Succeeded"
    assert record.tasks["uses"].results == {"got": "123"}  # written before the failure: still a result
    assert (record.tasks["wants-missing"].phase, record.tasks["wants-missing"].reason) == (
        "Skipped",
        "ResultsMissing",
    )
    assert record.tasks["report"].results == {"s": "Failed FailureIgnored"}

    strict = [tasks[0], script_task("strict", "true", params=[{"name": "v"}])]
    strict[1]["params"] = [{"name": "v", "value": "$(tasks.flaky.results.never)"}]
    record = run_local(pipelinerun("ignored-strict", strict), home)
    assert record.phase == "Failed"
    assert record.tasks["strict"].reason == "InvalidTaskResultReference"


def test_on_error_continue_with_retries_is_refused(home: Path) -> None:
    task = script_task("t", "exit 1", retries=2) | {"onError": "continue"}
    with pytest.raises(
        UnsupportedError, match=r"tasks\[0\]\.onError: Tekton does not allow retries with onError"
    ):
        run_local(pipelinerun("ignored-retries", [task]), home)


@pytest.mark.skipif(Path("/bin/sh").resolve().name != "dash", reason="only where /bin/sh is dash")
def test_an_sh_shebang_takes_busybox_tests_where_bin_sh_is_dash(home: Path) -> None:
    script = '#!/usr/bin/env sh\n[[ "$(params.x)" == "bar" ]] && printf yes > $(results.r.path)'
    task = script_task("t", script, params=[{"name": "x", "default": "bar"}], results=[{"name": "r"}])
    assert run_local(pipelinerun("sh-tests", [task]), home).tasks["t"].results == {"r": "yes"}


def test_one_claim_bound_read_write_and_read_only_in_one_task(home: Path) -> None:
    steps = [
        {
            "name": "write-allowed",
            "image": "x",
            "script": 'echo "hello" > $(workspaces.write-allowed.path)/foo',
        },
        {
            "name": "write-disallowed",
            "image": "x",
            "script": 'echo "goodbye" > $(workspaces.write-disallowed.path)/foo'
            " || touch $(results.refused.path)",
        },
        {
            "name": "read-again",
            "image": "x",
            "script": "cat $(workspaces.write-disallowed.path)/foo > $(results.seen.path)",
        },
    ]
    task = _task(
        "t",
        steps,
        workspaces=[{"name": "write-allowed"}, {"name": "write-disallowed", "readOnly": True}],
        results=[{"name": "refused"}, {"name": "seen"}],
    )
    task["workspaces"] = [
        {"name": "write-allowed", "workspace": "ws"},
        {"name": "write-disallowed", "workspace": "ws"},
    ]
    obj = pipelinerun("same-claim", [task], workspaces=[{"name": "ws"}])
    obj["spec"]["workspaces"] = [{"name": "ws", "persistentVolumeClaim": {"claimName": "my-pvc"}}]
    record = run_local(obj, home)
    assert record.phase == "Succeeded", record.tasks["t"].message
    assert record.tasks["t"].results == {"refused": "", "seen": "hello\n"}


def test_a_working_dir_in_a_read_only_workspace_reads_it_and_cannot_write_there(home: Path) -> None:
    writer = script_task(
        "writer", "mkdir -p $(workspaces.src.path)/code && echo v1 > $(workspaces.src.path)/code/f"
    )
    writer["taskSpec"]["workspaces"] = [{"name": "src"}]
    writer["workspaces"] = [{"name": "src", "workspace": "ws"}]
    step = {
        "name": "in-code",
        "image": "x",
        "workingDir": "$(workspaces.src.path)/code",
        "script": "cat f > $(results.seen.path); echo v2 > f || printf refused >> $(results.seen.path)",
    }
    reader = _task(
        "reader", [step], workspaces=[{"name": "src", "readOnly": True}], results=[{"name": "seen"}]
    )
    reader["workspaces"] = [{"name": "src", "workspace": "ws"}]
    reader["runAfter"] = ["writer"]
    obj = pipelinerun("ro-workdir", [writer, reader], workspaces=[{"name": "ws"}])
    obj["spec"]["workspaces"] = [{"name": "ws", "volumeClaimTemplate": {"spec": {}}}]
    record = run_local(obj, home)
    assert record.tasks["reader"].results == {"seen": "v1\nrefused"}, record.tasks["reader"].message
    assert (home / "runs/ro-workdir/workspaces/ws/code/f").read_text() == "v1\n"
