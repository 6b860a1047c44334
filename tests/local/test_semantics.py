"""Tekton semantics the local executor honours, on hand-written PipelineRuns run for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import alive, artifacts_workspace, fixture, pipelinerun, run_local, script_task


def test_diamond_middle_tasks_overlap_and_results_flow(home: Path) -> None:
    record = run_local(fixture("diamond.yaml"), home)
    assert record.phase == "Succeeded"
    left, right = record.tasks["left"], record.tasks["right"]
    assert left.start and left.end and right.start and right.end
    assert left.start < right.end and right.start < left.end, "left and right must run at the same time"
    assert min(left.end, right.end) - max(left.start, right.start) > 0.5  # both sleep 1 s, together
    assert record.tasks["right"].results["out"] == "hello-right-one+two+three"  # array param expanded
    assert record.outputs == {"joined": "hello-left|hello-right-one+two+three|diamond-join"}
    hello = home / "runs/diamond/workspaces/artifacts/top/hello.txt"
    assert hello.read_text() == "hello from diamond\n"
    saved = json.loads((home / "runs/diamond/run.json").read_text())
    assert saved["phase"] == "Succeeded"
    assert [s["name"] for s in saved["steps"]] == ["top", "left", "right", "join"]
    assert saved["steps"][0]["artifacts"][0]["path"].endswith("workspaces/artifacts/top")
    assert len(saved["steps"][0]["artifacts"][0]["sha256"]) == 64


def test_parallel_one_runs_tasks_one_at_a_time(home: Path) -> None:
    record = run_local(fixture("diamond.yaml"), home, parallel=1)
    left = [float(x) for x in record.tasks["left"].results["span"].split()]
    right = [float(x) for x in record.tasks["right"].results["span"].split()]
    assert left[1] <= right[0] or right[1] <= left[0], "with --parallel 1 the steps never overlap"


def test_false_when_skips_task_and_result_dependents_but_not_run_after_dependents(home: Path) -> None:
    tasks = [
        script_task("gate", "printf no > $(results.go.path)", results=[{"name": "go"}]),
        script_task(
            "guarded",
            "printf ran > $(results.out.path)",
            results=[{"name": "out"}],
            when=[{"input": "$(tasks.gate.results.go)", "operator": "in", "values": ["yes"]}],
        ),
        script_task(
            "uses-result",
            "echo $(params.x)",
            params=[{"name": "x"}],
        )
        | {"params": [{"name": "x", "value": "$(tasks.guarded.results.out)"}]},
        script_task("after", "printf ok > $(results.r.path)", results=[{"name": "r"}], runAfter=["guarded"]),
        script_task(
            "negated",
            "true",
            when=[{"input": "$(params.mode)", "operator": "notin", "values": ["fast", "quick"]}],
        ),
    ]
    obj = pipelinerun("whens", tasks, params=[{"name": "mode", "default": "fast"}])
    record = run_local(obj, home)
    assert record.phase == "Succeeded"
    assert (record.tasks["guarded"].phase, record.tasks["guarded"].reason) == (
        "Skipped",
        "WhenExpressionsFalse",
    )
    assert record.tasks["uses-result"].phase == "Skipped"
    assert record.tasks["after"].phase == "Succeeded"
    assert record.tasks["negated"].phase == "Skipped"
    assert not (home / "runs/whens/logs/guarded.log").exists()


def test_finally_runs_after_a_failure_and_sees_statuses(home: Path) -> None:
    tasks = [
        script_task("ok", "true"),
        script_task("boom", "echo about to fail; exit 3", runAfter=["ok"]),
        script_task("never", "true", runAfter=["boom"]),
    ]
    report = script_task(
        "report",
        'printf "%s %s %s" "$(params.all)" "$(params.boom)" "$(params.never)" > $(results.s.path)',
        results=[{"name": "s"}],
    )
    report["params"] = [  # Tekton substitutes statuses in a finally task's params and when only
        {"name": "all", "value": "$(tasks.status)"},
        {"name": "boom", "value": "$(tasks.boom.status)"},
        {"name": "never", "value": "$(tasks.never.status)"},
    ]
    final = [
        report,
        script_task(
            "on-success-only",
            "true",
            when=[{"input": "$(tasks.status)", "operator": "in", "values": ["Succeeded"]}],
        ),
    ]
    record = run_local(pipelinerun("fin", tasks, **{"finally": final}), home)
    assert record.phase == "Failed"
    assert record.tasks["boom"].phase == "Failed"
    assert "exited with code 3" in record.tasks["boom"].message
    assert record.tasks["never"].phase == "Skipped"
    assert record.tasks["report"].results["s"] == "Failed Failed None"
    assert record.tasks["on-success-only"].phase == "Skipped"


def test_retries_rerun_a_failed_task(home: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    flaky = script_task(
        "flaky",
        f"echo x >> {counter}\n[ $(wc -l < {counter}) -ge 3 ] || exit 1\n"
        "printf '%s' $(context.task.retry-count) > $(results.try.path)",
        results=[{"name": "try"}],
        retries=2,
    )
    record = run_local(pipelinerun("retry", [flaky]), home)
    assert record.phase == "Succeeded"
    assert record.tasks["flaky"].attempts == 3
    assert record.tasks["flaky"].results["try"] == "2"
    log = (home / "runs/retry/logs/flaky.log").read_text()
    assert log.count("--- retry") == 2

    never = script_task("never", "exit 1", retries=1)
    record = run_local(pipelinerun("retry-fail", [never]), home)
    assert record.phase == "Failed"
    assert record.tasks["never"].attempts == 2
    assert "after 1 retries" in record.tasks["never"].message


def test_task_timeout_kills_the_step_and_its_children(home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    slow = script_task("slow", f"sleep 60 &\necho $! > {pid_file}\nwait", timeout="1s")
    started = time.monotonic()
    record = run_local(pipelinerun("timeout", [slow]), home)
    assert time.monotonic() - started < 10
    assert (record.phase, record.tasks["slow"].reason) == ("Failed", "TaskRunTimeout")
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_tasks_timeout_still_runs_finally(home: Path) -> None:
    obj = pipelinerun(
        "pt",
        [script_task("slow", "sleep 30")],
        **{"finally": [script_task("cleanup", "printf done > $(results.r.path)", results=[{"name": "r"}])]},
        timeouts={"pipeline": "1m", "tasks": "1s"},
    )
    started = time.monotonic()
    record = run_local(obj, home)
    assert time.monotonic() - started < 10
    assert record.phase == "Failed"
    assert record.tasks["slow"].reason == "TaskRunCancelled"
    assert record.tasks["cleanup"].results == {"r": "done"}


def test_step_details_shebang_working_dir_env_on_error(home: Path) -> None:
    task = {
        "name": "steps",
        "workspaces": [{"name": "out", "workspace": "artifacts", "subPath": "steps"}],
        "taskSpec": {
            "workspaces": [{"name": "out", "mountPath": "/data"}],
            "results": [{"name": "py"}, {"name": "cwd"}],
            "stepTemplate": {"env": [{"name": "GREETING", "value": "hi"}]},
            "steps": [
                {"name": "fails", "image": "x", "script": "exit 4", "onError": "continue"},
                {
                    "name": "python",
                    "image": "python",
                    "script": "#!/usr/bin/env python3\nimport os, sys\n"
                    "open('$(results.py.path)', 'w')"
                    ".write(os.environ['GREETING'] + ' ' + os.environ['SLUICE_EXECUTOR'])\n",
                },
                {
                    "name": "where",
                    "image": "x",
                    "workingDir": "/data/sub",
                    "command": ["sh", "-c"],
                    "args": ['pwd > "$1"', "sh", "$(results.cwd.path)"],
                },
            ],
        },
    }
    obj = pipelinerun("steps", [task], workspaces=[{"name": "artifacts"}])
    obj["spec"]["workspaces"] = [artifacts_workspace()]
    record = run_local(obj, home)
    assert record.phase == "Succeeded", record.tasks["steps"].message
    assert record.tasks["steps"].results["py"] == "hi local"
    expected = home / "runs/steps/workspaces/artifacts/steps/sub"
    assert record.tasks["steps"].results["cwd"].strip() == str(expected)


def test_secrets_reach_steps_but_never_logs_or_records(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "secrets.yaml").write_text("registry: {password: hunter2-from-file}\n")
    monkeypatch.setenv("SLUICE_SECRET_REGISTRY_TOKEN", "tok-from-env-123")
    task = {
        "name": "use",
        "taskSpec": {
            "results": [{"name": "len"}],
            "steps": [
                {
                    "name": "main",
                    "image": "x",
                    "env": [
                        {
                            "name": "PW",
                            "valueFrom": {"secretKeyRef": {"name": "registry", "key": "password"}},
                        },
                        {
                            "name": "TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "registry", "key": "token"}},
                        },
                    ],
                    "script": 'echo "leaking $PW and $TOKEN"\nprintf "%s" "${#PW}" > $(results.len.path)',
                }
            ],
        },
    }
    record = run_local(pipelinerun("sec", [task]), home)
    assert record.phase == "Succeeded"
    assert record.tasks["use"].results["len"] == str(len("hunter2-from-file"))
    everything = "".join(p.read_text(errors="replace") for p in (home / "runs/sec").rglob("*") if p.is_file())
    assert "hunter2-from-file" not in everything and "tok-from-env-123" not in everything
    assert "leaking *** and ***" in (home / "runs/sec/logs/use.log").read_text()

    missing = {
        "name": "missing",
        "taskSpec": {
            "steps": [
                {
                    "name": "m",
                    "image": "x",
                    "script": "true",
                    "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
                }
            ]
        },
    }
    record = run_local(pipelinerun("sec-missing", [missing]), home)
    assert record.phase == "Failed"
    assert "SLUICE_SECRET_NOPE_K" in record.tasks["missing"].message


def test_missing_result_fails_the_run_naming_it(home: Path) -> None:
    tasks = [
        script_task("quiet", "true", results=[{"name": "out"}]),
        {
            "name": "reader",
            "params": [{"name": "x", "value": "$(tasks.quiet.results.out)"}],
            "taskSpec": {"params": [{"name": "x"}], "steps": [{"name": "s", "image": "x", "script": "true"}]},
        },
    ]
    record = run_local(pipelinerun("missing", tasks), home)
    assert record.phase == "Failed"
    assert record.tasks["reader"].reason == "InvalidTaskResultReference"
    assert "no result out" in record.tasks["reader"].message


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["spec"]["pipelineSpec"]["tasks"][0].update(matrix={"params": []}), "tasks[0].matrix"),
        (
            lambda o: o["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"].update(
                sidecars=[{"name": "s", "script": "true", "readinessProbe": {"grpc": {"port": 1}}}]
            ),
            "taskSpec.sidecars[0].readinessProbe.grpc",
        ),
        (lambda o: o["spec"]["pipelineSpec"]["tasks"][0].update(taskRef={"name": "x"}), "taskRef"),
        (lambda o: o["spec"].update(timeouts={"pipeline": "soon"}), "timeouts.pipeline"),
        (lambda o: o["spec"]["pipelineSpec"]["tasks"][0].update(runAfter=["ghost"]), "ghost"),
        (
            lambda o: o["spec"].update(
                taskRunSpecs=[{"pipelineTaskName": "ghost", "serviceAccountName": "x"}]
            ),
            "taskRunSpecs[0].pipelineTaskName",
        ),
        (
            lambda o: o["spec"].update(taskRunSpecs=[{"pipelineTaskName": "a", "computeResources": {}}]),
            "taskRunSpecs[0].computeResources",
        ),
    ],
)
def test_unsupported_fields_are_errors_naming_them(home: Path, mutate: object, message: str) -> None:
    obj = pipelinerun("bad", [script_task("a", "true")])
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(UnsupportedError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_local(obj, home)


def test_service_accounts_and_pod_templates_are_cluster_only(home: Path) -> None:
    """Who a task runs as and its pod template mean nothing to local processes: accepted, ignored."""
    obj = pipelinerun(
        "accounts", [script_task("a", "printf ok > $(results.out.path)", results=[{"name": "out"}])]
    )
    obj["spec"]["taskRunTemplate"] = {
        "serviceAccountName": "sluice-step",
        "podTemplate": {"automountServiceAccountToken": False},
    }
    obj["spec"]["taskRunSpecs"] = [
        {
            "pipelineTaskName": "a",
            "serviceAccountName": "sluice-run",
            "podTemplate": {"automountServiceAccountToken": True},
        }
    ]
    record = run_local(obj, home)
    assert record.phase == "Succeeded" and record.tasks["a"].results["out"] == "ok"


def test_unknown_variable_is_refused_before_any_step_runs_naming_it(home: Path) -> None:
    run = pipelinerun("var", [script_task("a", "echo $(params.nope) $(date)")])
    with pytest.raises(
        UnsupportedError,
        match=r"tasks\[0\]\.taskSpec\.steps\[0\]\.script: unknown variable \$\(params.nope\)",
    ):
        run_local(run, home)
    assert not (home / "runs" / "var").exists()  # nothing ran, nothing was laid out


def test_dependency_cycle_is_an_error(home: Path) -> None:
    tasks = [script_task("a", "true", runAfter=["b"]), script_task("b", "true", runAfter=["a"])]
    with pytest.raises(UnsupportedError, match="cycle"):
        run_local(pipelinerun("cycle", tasks), home)
