"""What a task's pod would mount, recorded on each step for a runner that starts containers.

Host processes cannot mount anything: they see workspaces and results through substituted host
paths, and a task volume mounted at /tmp through `TMPDIR` (`check_pipelinerun` refuses a volume
mounted anywhere else unless steps run in containers). A container runner mounts `Step.mounts`
(`-v host:path[:ro]`).

An emptyDir lives as long as its pod and every container of the pod that mounts it sees the same
files, whatever its `medium`: so each volume is one folder of the task attempt, bind-mounted into
every step. A `medium: Memory` one is a folder in memory (`memory_root`, on /dev/shm), not a
`--tmpfs` per container, which would give each step an empty one of its own.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from controller.executors.local.process import Mount
from controller.executors.local.tekton import HOST_TMP

RESULTS_MOUNT = "/tekton/results"


def workspace_mounts(spec: dict[str, Any], paths: dict[str, Path | None], results_dir: Path) -> list[Mount]:
    """The task's bound workspaces at their mount paths (default `/workspace/<name>`), then its results."""
    mounts = []
    for decl in spec.get("workspaces") or []:
        local = paths.get(decl["name"])
        if local is not None:
            path = decl.get("mountPath") or f"/workspace/{decl['name']}"
            mounts.append(Mount(path, local, bool(decl.get("readOnly"))))
    mounts.append(Mount(RESULTS_MOUNT, results_dir))
    return mounts


def is_memory(volume: dict[str, Any]) -> bool:
    return (volume.get("emptyDir") or {}).get("medium") == "Memory"


def memory_root(shm: Path = Path("/dev/shm"), create: bool = True) -> Path | None:
    """Where `medium: Memory` volumes live: the caller's own folder on /dev/shm (a tmpfs), made
    private (0700: another user of this machine cannot read what a step keeps in memory). None
    where there is no /dev/shm or the folder is not safely the caller's (a symbolic link, another
    owner, open to others): then Memory volumes are ordinary folders of the task, on disk."""
    if not shm.is_dir():
        return None
    root = shm / f"sluice-{os.getuid()}"
    try:
        if create:
            root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return root if private else None


def volume_mounts(
    mounts: list[dict[str, Any]], volumes: dict[str, dict[str, Any]], volumes_dir: Path, memory_dir: Path
) -> tuple[list[Mount], Path | None]:
    """A step's `volumeMounts` of the task's emptyDir volumes: one folder per volume and attempt, shared
    by the task's steps as in a pod (in `memory_dir` for `medium: Memory`, else in `volumes_dir`).
    Returns (bind mounts, the folder at /tmp)."""
    binds: list[Mount] = []
    tmpdir = None
    for mount in mounts:
        folder = memory_dir if is_memory(volumes[mount["name"]]) else volumes_dir
        host = folder / mount["name"] / mount.get("subPath", "")
        host.mkdir(parents=True, exist_ok=True)
        path = mount["mountPath"]
        binds.append(Mount(path, host, bool(mount.get("readOnly"))))
        if path.rstrip("/") == HOST_TMP:
            tmpdir = host
    return binds, tmpdir


def remove_volumes(volumes_dir: Path | None, memory_dir: Path | None) -> None:
    """An attempt's emptyDir volumes, gone with its pod (and its run's memory folder, once empty)."""
    for folder in (volumes_dir, memory_dir):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    if memory_dir is not None:
        with contextlib.suppress(OSError):
            memory_dir.parent.rmdir()


def remove_run_memory(run: str) -> None:
    """Whatever a run still holds in memory when it ends, however it ends (a cancelled attempt's
    volumes are not removed by the attempt): memory is not given back until the folder goes."""
    root = memory_root(create=False)
    if root is not None and run and "/" not in run and run not in (".", ".."):
        shutil.rmtree(root / run, ignore_errors=True)


def host_path(path: str, mounts: list[Mount]) -> Path | None:
    """The folder of this machine behind a container path, through the mount table (the deepest
    mount wins); None when no mount holds it. `..` is resolved first: it cannot leave a mount."""
    path = posixpath.normpath(path) if path.startswith("/") else ""
    for mount in sorted(mounts, key=lambda m: -len(m.path)):
        root = mount.path.rstrip("/") or "/"
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return mount.host / path[len(root) :].lstrip("/")
    return None


def host_text(text: str, mounts: list[Mount]) -> str:
    """`text` with every container path under a mount written as the host path behind it."""
    if not mounts:
        return text
    roots = sorted((m.path.rstrip("/") for m in mounts if m.path.rstrip("/")), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(r) for r in roots) + r")(?=/|$|[^\w.-])")
    by_root = {m.path.rstrip("/"): m.host for m in mounts}
    return pattern.sub(lambda match: str(by_root[match.group(1)]), text)
