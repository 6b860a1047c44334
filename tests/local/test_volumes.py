"""Task volumes locally: emptyDir only; host processes get a volume at /tmp as TMPDIR and refuse others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.pipelinerun_check import check_pipelinerun
from controller.executors.local.process import Mount
from controller.executors.local.resolve import resolve_task
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import Scope
from tests.local.helpers import pipelinerun, run_local


def _task(
    name: str, steps: list[dict[str, Any]], volumes: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {"name": name, "taskSpec": {"steps": steps, "volumes": volumes, **spec}}


def _step(name: str, script: str, mount_path: str = "/tmp", **mount: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "busybox",
        "script": script,
        "volumeMounts": [{"name": "tmp", "mountPath": mount_path, **mount}],
    }


TMP = [{"name": "tmp", "emptyDir": {}}]


def test_a_volume_at_tmp_is_the_steps_tmpdir_shared_by_the_tasks_steps_and_removed_after(home: Path) -> None:
    steps = [
        _step("write", 'printf shared > "$TMPDIR/note"'),
        _step("read", 'cat "$TMPDIR/note" > $(results.note.path); printf %s "$TMPDIR" > $(results.dir.path)'),
    ]
    task = _task("scratch", steps, TMP, results=[{"name": "note"}, {"name": "dir"}])
    record = run_local(pipelinerun("volumes", [task]), home)
    assert record.phase == "Succeeded", record.tasks["scratch"].message
    assert record.tasks["scratch"].results["note"] == "shared"
    tmpdir = Path(record.tasks["scratch"].results["dir"])
    assert tmpdir == home / "runs/volumes/tasks/scratch/volumes/tmp"
    assert not tmpdir.exists(), "an emptyDir ends with its pod"


def test_each_attempt_starts_with_an_empty_volume(home: Path) -> None:
    script = 'test ! -e "$TMPDIR/seen" || { printf stale > $(results.r.path); exit 0; }\n'
    script += 'touch "$TMPDIR/seen"\nexit 1'
    task = _task("retry", [_step("main", script)], TMP, results=[{"name": "r"}]) | {"retries": 1}
    record = run_local(pipelinerun("attempts", [task]), home)
    assert record.tasks["retry"].phase == "Failed"  # the second attempt saw no leftover


@pytest.mark.parametrize(
    ("volumes", "mount", "message"),
    [
        ([{"name": "tmp", "hostPath": {"path": "/"}}], {}, "only emptyDir volumes can run locally"),
        ([{"name": "tmp", "configMap": {"name": "x"}}], {}, "only emptyDir volumes can run locally"),
        (TMP, {"mount_path": "/cache"}, "host processes cannot mount a volume at '/cache'"),
        (TMP, {"mount_path": "tmp"}, "an absolute path is needed"),
        (TMP, {"subPath": "../../etc"}, "a relative path without '..' is needed"),
        ([{"name": "other", "emptyDir": {}}], {}, "the task has no volume 'tmp'"),
        ([*TMP, *TMP], {}, "duplicate volume name 'tmp'"),
    ],
)
def test_what_host_processes_cannot_honour_is_refused_before_anything_runs(
    volumes: list[dict[str, Any]], mount: dict[str, Any], message: str
) -> None:
    task = _task("t", [_step("main", "true", **mount)], volumes)
    with pytest.raises(UnsupportedError, match=message):
        check_pipelinerun(pipelinerun("refused", [task]))


def test_containers_may_mount_volumes_anywhere() -> None:
    task = _task("t", [_step("main", "true", mount_path="/cache")], TMP)
    with pytest.raises(UnsupportedError):
        check_pipelinerun(pipelinerun("host", [task]))
    check_pipelinerun(pipelinerun("containers", [task]), containers=True)


def test_resolved_steps_record_what_the_pod_mounts(home: Path, tmp_path: Path) -> None:
    from controller.executors.local.resolve import RunContext
    from controller.executors.local.secrets import LocalSecrets
    from controller.executors.local.workspaces import Workspace

    artifacts = tmp_path / "artifacts"
    ctx = RunContext(
        "r", "default", "r", "w", tmp_path / "run", home, {},
        {"artifacts": Workspace("artifacts", "volumeClaimTemplate", artifacts, "pvc-artifacts")},
        LocalSecrets(home),
    )  # fmt: skip
    steps = [
        _step("a", "true"),
        {**_step("b", "true", mount_path="/cache"), "volumeMounts": [{"name": "mem", "mountPath": "/cache"}]},
    ]
    volumes = [*TMP, {"name": "mem", "emptyDir": {"medium": "Memory"}}]
    spec = {"workspaces": [{"name": "artifacts"}, {"name": "src", "mountPath": "/src", "readOnly": True}]}
    task = _task("t", steps, volumes, **spec) | {
        "workspaces": [
            {"name": "artifacts", "workspace": "artifacts"},
            {"name": "src", "workspace": "artifacts"},
        ]
    }
    task_dir = tmp_path / "task"
    resolved = resolve_task(ctx, task, Scope({}, ("params",), (), "$"), task_dir, 0, "$.tasks[0]")
    a, b = resolved.steps
    assert a.mounts == [
        Mount("/workspace/artifacts", artifacts),
        Mount("/src", artifacts, read_only=True),
        Mount("/tekton/results", task_dir / "results"),
        Mount("/tmp", task_dir / "volumes/tmp"),
    ]
    assert a.tmpfs == [] and a.env["TMPDIR"] == str(task_dir / "volumes/tmp")
    assert b.mounts[-1] == Mount("/tekton/results", task_dir / "results") and b.tmpfs == ["/cache"]
    assert b.env.get("TMPDIR") != str(task_dir / "volumes/tmp")
    assert resolved.volumes_dir == task_dir / "volumes"
