"""`sluice run --containers`: a task's `emptyDir: {medium: Memory}` volume is one in-memory folder
every step container of the task mounts, as the one tmpfs of a pod is, and is gone when the task
ends. Real containers, through the engine tests/local/test_containers.py finds (skipped with it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.executors.local import memoryvolumes
from controller.executors.local.engines import Engine
from controller.executors.local.volumes import memory_root, remove_run_memory
from tests.local.test_containers import engine, run_contained, stages_image
from testsupport.pipelineruns import one_task_run, restricted_step

__all__ = ["engine", "stages_image"]  # the fixtures, shared with the container tests

pytestmark = pytest.mark.slow

WRITE = """\
printf 'in memory' > /mem/note
printf 'by subPath' > /part/p
awk '$2 == "/mem" { printf "%s", $3 }' /proc/mounts > $(results.fstype.path)
if head -c 17825792 /dev/zero > /mem/big 2>/dev/null; then r=written; else r=refused; fi
rm -f /mem/big
printf %s "$r" > $(results.over-limit.path)
"""
READ = """\
cat /mem/note /mem/part/p > $(results.seen.path)
ls -A /mem | tr '\\n' ' ' > $(results.listing.path)
"""


def test_steps_share_one_memory_volume_which_is_gone_after_the_task(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    write = restricted_step("write", stages_image, script=WRITE)
    read = restricted_step("read", stages_image, script=READ)
    for step in (write, read):
        step["volumeMounts"] = [*step["volumeMounts"], {"name": "mem", "mountPath": "/mem"}]
    write["volumeMounts"].append({"name": "mem", "mountPath": "/part", "subPath": "part"})
    run = one_task_run(
        "memory-volume", "scratch", [write, read], results=("fstype", "seen", "listing", "over-limit")
    )
    spec = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]
    spec["volumes"].append({"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})

    data = run_contained(tmp_path, engine, run)
    outputs = data["steps"][0]["results"]
    assert outputs["seen"] == "in memoryby subPath", "the second step sees what the first wrote"
    assert outputs["fstype"] == "tmpfs", "the volume is in memory"
    assert sorted(outputs["listing"].split()) == ["note", "part"]
    # 17 MiB into a 16Mi volume: refused where the engine can size a tmpfs (podman as root), as on
    # Kubernetes; elsewhere (docker, rootless podman) the folder in memory is not bounded
    assert outputs["over-limit"] == ("refused" if memoryvolumes.can_size(engine) else "written")
    listed = engine.run("volume", "ls", "--quiet", "--filter", f"label=sluice.dev/run={data['run']}")
    assert listed.returncode == 0 and listed.stdout.split() == [], "the engine's volume is removed"
    root = memory_root()
    assert root is not None
    assert not (root / data["run"]).exists(), "gone with the task: its memory is given back"
    assert not list((tmp_path / "runs" / data["run"]).rglob("note")), "never written to disk"


def test_the_engine_volumes_of_a_run_cut_short_are_removed_when_it_ends(engine: Engine) -> None:
    """A cancelled attempt leaves its sized tmpfs volume mounted; the run's end removes it."""
    if not memoryvolumes.can_size(engine):
        pytest.skip("this engine cannot size a tmpfs (docker, rootless podman): no engine volumes")
    run = "cut-short-run"
    held = asyncio.run(
        memoryvolumes.hold(engine, run, "sluice-cut-short-0", {"mem": (_folder(run), 1 << 20)})
    )
    assert held == ["sluice-cut-short-0-mem"]
    assert (_folder(run) / "f").write_text("x") == 1  # the link leads into the mounted tmpfs
    memoryvolumes.release_run(engine, run)
    listed = engine.run("volume", "ls", "--quiet", "--filter", f"label=sluice.dev/run={run}")
    assert listed.stdout.split() == []
    remove_run_memory(run)


def _folder(run: str) -> Path:
    root = memory_root()
    assert root is not None
    folder = root / run / "t" / "mem"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
