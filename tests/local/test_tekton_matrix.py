"""`matrix` in the local executor: Tekton's fan-out, TaskRun names, results fan-in, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.matrix import combinations
from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import pipelinerun, run_local, script_task


def _matrixed(
    name: str, script: str, matrix: dict[str, Any], params: list[str], **extra: Any
) -> dict[str, Any]:
    task = script_task(name, script, params=[{"name": p} for p in params], **extra)
    task["matrix"] = matrix
    return task


def test_include_adds_to_matching_combinations_or_its_own_as_tekton_documents() -> None:
    found = combinations(
        [("platform", ["linux", "mac"]), ("browser", ["safari", "chrome"])],
        [("linux-url", {"platform": "linux", "url": "some-url"}), ("odd", {"browser": "i-do-not-exist"})],
    )
    got = sorted(tuple(sorted(c.params.items())) for c in found)
    assert got == sorted(  # docs/matrix.md, "Explicit Combinations"
        [
            (("browser", "safari"), ("platform", "linux"), ("url", "some-url")),
            (("browser", "chrome"), ("platform", "linux"), ("url", "some-url")),
            (("browser", "safari"), ("platform", "mac")),
            (("browser", "chrome"), ("platform", "mac")),
            (("browser", "i-do-not-exist"),),
        ]
    )
    only_include = combinations([], [("build-1", {"IMAGE": "image-1"}), ("build-2", {"IMAGE": "image-2"})])
    assert [(c.name, c.params) for c in only_include] == [
        ("build-1", {"IMAGE": "image-1"}),
        ("build-2", {"IMAGE": "image-2"}),
    ]


def test_matrix_fans_out_one_taskrun_per_combination_and_results_fan_in(home: Path) -> None:
    tasks = [
        _matrixed(
            "build",
            "printf '%s-%s@%s' $(params.platform) $(params.browser) $(context.taskRun.name)"
            " > $(results.out.path)",
            {
                "params": [
                    {"name": "platform", "value": ["linux", "mac"]},
                    {"name": "browser", "value": "$(params.browsers[*])"},
                ]
            },
            ["platform", "browser"],
            results=[{"name": "out"}],
        ),
        script_task(
            "gather",
            'for x in "$@"; do printf "%s;" "$x"; done > $(results.all.path)\n'
            "printf ' n=$(tasks.build.matrix.length) r=$(tasks.build.matrix.out.length)'"
            " >> $(results.all.path)",
            results=[{"name": "all"}],
            params=[{"name": "items", "type": "array"}],
        )
        | {"params": [{"name": "items", "value": ["$(tasks.build.results.out[*])"]}]},
    ]
    tasks[1]["taskSpec"]["steps"][0]["args"] = ["$(params.items[*])"]
    # only the matrix length: still waits for the matrixed task (Tekton: it can alter the order)
    tasks.append(
        script_task(
            "count", "printf $(tasks.build.matrix.length) > $(results.n.path)", results=[{"name": "n"}]
        )
    )
    obj = pipelinerun(
        "fan", tasks, params=[{"name": "browsers", "type": "array", "default": ["safari", "chrome"]}]
    )
    record = run_local(obj, home)
    assert record.phase == "Succeeded", {n: t.message for n, t in record.tasks.items()}
    outs = record.tasks["build"].results["out"]
    assert outs == [  # Tekton's order: each new param's values outermost; names <run>-<task>-<index>
        "linux-safari@fan-build-0",
        "mac-safari@fan-build-1",
        "linux-chrome@fan-build-2",
        "mac-chrome@fan-build-3",
    ]
    assert record.tasks["gather"].results["all"] == ";".join(outs) + "; n=4 r=4"
    assert record.tasks["count"].results == {"n": "4"}
    assert record.tasks["count"].start and record.tasks["build"].end
    assert record.tasks["count"].start >= record.tasks["build"].end
    log = (home / "runs/fan/logs/build.log").read_text()
    assert "=== taskrun fan-build-3" in log and "platform=mac browser=chrome" in log


def test_one_failing_combination_fails_the_task_and_the_run(home: Path) -> None:
    task = _matrixed(
        "check",
        '[ "$(params.n)" != 2 ] || { echo "two is bad"; exit 3; }',
        {"params": [{"name": "n", "value": ["1", "2", "3"]}]},
        ["n"],
    )
    record = run_local(
        pipelinerun("fan-fail", [task, script_task("after", "true", runAfter=["check"])]), home
    )
    assert record.phase == "Failed"
    assert record.tasks["check"].phase == "Failed"
    assert record.tasks["check"].message == "fan-fail-check-1: step main exited with code 3"
    assert record.tasks["after"].phase == "Skipped"
    assert record.tasks["check"].exit_codes == {"0/main": 0, "1/main": 3, "2/main": 0}


def test_when_false_skips_the_whole_matrix_and_an_empty_array_skips_it(home: Path) -> None:
    guarded = _matrixed(
        "guarded",
        "true",
        {"params": [{"name": "n", "value": ["1", "2"]}]},
        ["n"],
        when=[{"input": "$(params.go)", "operator": "in", "values": ["yes"]}],
    )
    empty = _matrixed("empty", "true", {"params": [{"name": "n", "value": "$(params.none[*])"}]}, ["n"])
    obj = pipelinerun(
        "fan-skip",
        [guarded, empty],
        params=[{"name": "go", "default": "no"}, {"name": "none", "type": "array", "default": []}],
    )
    record = run_local(obj, home)
    assert record.phase == "Succeeded"
    assert (record.tasks["guarded"].phase, record.tasks["guarded"].reason) == (
        "Skipped",
        "WhenExpressionsFalse",
    )
    assert (record.tasks["empty"].phase, record.tasks["empty"].reason) == (
        "Skipped",
        "EmptyArrayInMatrixParams",
    )
    assert not list((home / "runs/fan-skip/logs").glob("*.log"))


def test_more_than_256_combinations_are_refused_before_anything_runs(home: Path) -> None:
    values = [str(i) for i in range(17)]
    task = _matrixed(
        "big",
        "true",
        {"params": [{"name": "a", "value": values}, {"name": "b", "value": values}]},
        ["a", "b"],
    )
    with pytest.raises(
        UnsupportedError, match=r"tasks\[0\]\.matrix: 289 combinations, over Tekton's default maximum of 256"
    ):
        run_local(pipelinerun("too-big", [task]), home)
    assert not (home / "runs/too-big").exists()

    dynamic = _matrixed("big", "true", {"params": [{"name": "a", "value": "$(params.many[*])"}]}, ["a"])
    obj = pipelinerun(
        "too-big-2",
        [dynamic],
        params=[{"name": "many", "type": "array", "default": [str(i) for i in range(300)]}],
    )
    record = run_local(obj, home)
    assert (record.tasks["big"].phase, record.tasks["big"].reason) == ("Failed", "InvalidMatrixParameters")
    assert "300 combinations" in record.tasks["big"].message


def test_a_param_both_in_matrix_and_params_is_refused(home: Path) -> None:
    task = _matrixed("t", "true", {"params": [{"name": "n", "value": ["1"]}]}, ["n"])
    task["params"] = [{"name": "n", "value": "x"}]
    with pytest.raises(UnsupportedError, match=r"matrix\.params\[0\]\.name: 'n' is also in params"):
        run_local(pipelinerun("both", [task]), home)


def test_each_combination_is_retried_on_its_own_and_include_alone_names_them(
    home: Path, tmp_path: Path
) -> None:
    task = _matrixed(
        "flaky",
        f"echo x >> {tmp_path}/$(params.IMAGE)\n"
        f'[ "$(params.IMAGE)" != image-2 ] || [ $(wc -l < {tmp_path}/image-2) -ge 2 ]\n'
        "printf '%s:%s' $(params.IMAGE) $(context.task.retry-count) > $(results.r.path)",
        {
            "include": [
                {"name": "build-1", "params": [{"name": "IMAGE", "value": "image-1"}]},
                {"name": "build-2", "params": [{"name": "IMAGE", "value": "image-2"}]},
            ]
        },
        ["IMAGE"],
        results=[{"name": "r"}],
        retries=1,
    )
    record = run_local(pipelinerun("fan-retry", [task]), home)
    assert record.phase == "Succeeded", record.tasks["flaky"].message
    assert record.tasks["flaky"].results == {"r": ["image-1:0", "image-2:1"]}
    assert record.tasks["flaky"].attempts == 2
    assert (
        "=== taskrun fan-retry-flaky-1 build-2 (IMAGE=image-2)"
        in (home / "runs/fan-retry/logs/flaky.log").read_text()
    )


@pytest.mark.parametrize("value", ["linux", ["linux", 3]])
def test_a_matrix_param_that_is_not_an_array_of_strings_is_refused(home: Path, value: Any) -> None:
    task = _matrixed("t", "true", {"params": [{"name": "os", "value": value}]}, ["os"])
    with pytest.raises(
        UnsupportedError, match=r"matrix\.params\[0\]\.value: a matrix param is an array of strings"
    ):
        run_local(pipelinerun("not-array", [task]), home)


def test_display_name_and_include_names_read_each_combinations_params(home: Path) -> None:
    task = _matrixed(
        "build",
        "true",
        {
            "params": [{"name": "os", "value": ["linux", "mac"]}],
            "include": [
                {
                    "name": "Special $(params.os) with $(params.flag)",
                    "params": [{"name": "flag", "value": "x"}],
                }
            ],
        },
        ["os", "flag"],
        displayName="Build for $(params.os)",
    )
    record = run_local(pipelinerun("fan-names", [task]), home)
    assert record.phase == "Succeeded", record.tasks["build"].message
    headers = [
        line for line in (home / "runs/fan-names/logs/build.log").read_text().splitlines() if "===" in line
    ]
    assert headers == [
        "=== taskrun fan-names-build-0 Special linux with x (os=linux flag=x)",
        "=== taskrun fan-names-build-1 Special mac with x (os=mac flag=x)",
    ]
