"""Task volumes locally: emptyDir only; host processes get a volume at /tmp as TMPDIR and refuse others."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.pipelinerun_check import check_pipelinerun
from controller.executors.local.process import Mount
from controller.executors.local.resolve import resolve_task
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import Scope
from controller.executors.local.volumes import memory_root, remove_run_memory, remove_volumes
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


def test_a_memory_volume_is_one_folder_in_memory_shared_by_the_steps_and_removed_after(home: Path) -> None:
    """As in a pod, a `medium: Memory` emptyDir is one tmpfs all the task's steps see (here: a
    private folder on /dev/shm, the step's TMPDIR), gone when the task ends."""
    steps = [
        _step("write", 'printf kept > "$TMPDIR/note"'),
        _step("read", 'cat "$TMPDIR/note" > $(results.note.path); printf %s "$TMPDIR" > $(results.dir.path)'),
    ]
    memory = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    task = _task("scratch", steps, memory, results=[{"name": "note"}, {"name": "dir"}])
    record = run_local(pipelinerun("in-memory", [task]), home)
    assert record.phase == "Succeeded", record.tasks["scratch"].message
    assert record.tasks["scratch"].results["note"] == "kept"
    tmpdir = Path(record.tasks["scratch"].results["dir"])
    root = memory_root()
    assert root is not None and tmpdir == root / "in-memory" / "in-memory-scratch" / "tmp"
    assert not (root / "in-memory").exists(), "an emptyDir ends with its pod, memory given back"


def test_a_run_cut_short_gives_its_memory_back(tmp_path: Path) -> None:
    """An attempt cancelled mid-step does not remove its volumes: the run's end does."""
    root = memory_root()
    assert root is not None
    left = root / f"cut-short-{tmp_path.name}" / "cut-short-t" / "mem"
    left.mkdir(parents=True)
    (left / "big").write_bytes(b"x" * 4096)
    remove_run_memory("..")  # never a path outside the run's own folder
    assert root.is_dir()
    remove_run_memory(left.parents[1].name)
    assert not left.parents[1].exists()


def test_the_memory_root_is_the_callers_own_and_private(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    root = memory_root(shm)
    assert root == shm / f"sluice-{os.getuid()}" and root.stat().st_mode & 0o777 == 0o700
    root.chmod(0o755)  # readable by other users of the machine: not used
    assert memory_root(shm) is None
    root.rmdir()
    root.symlink_to(tmp_path)  # planted by someone else: not followed
    assert memory_root(shm) is None
    assert memory_root(tmp_path / "no-shm") is None  # no /dev/shm (macOS): folders on disk


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
        (
            [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "lots"}}],
            {},
            r"volumes\[0\]\.emptyDir\.sizeLimit: 'lots' is not a Kubernetes quantity",
        ),
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
    assert a.env["TMPDIR"] == str(task_dir / "volumes/tmp")
    memory = memory_root()
    assert memory is not None, "Linux has /dev/shm"
    assert b.mounts[-2:] == [
        Mount("/tekton/results", task_dir / "results"),
        Mount("/cache", memory / "r" / "r-t" / "mem"),  # one folder in memory for every step
    ]
    assert b.env.get("TMPDIR") != str(task_dir / "volumes/tmp")
    assert resolved.volumes_dir == task_dir / "volumes"
    assert resolved.memory_dir == memory / "r" / "r-t"
    remove_volumes(resolved.volumes_dir, resolved.memory_dir)
    assert not (memory / "r").exists()
