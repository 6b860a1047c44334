"""What a task's pod would mount, recorded on each step for a runner that starts containers.

Host processes cannot mount anything: they see workspaces and results through substituted host
paths, and a task volume mounted at /tmp through `TMPDIR` (`check_pipelinerun` refuses a volume
mounted anywhere else unless steps run in containers). A container runner mounts `Step.mounts`
(`-v host:path[:ro]`) and `Step.tmpfs` (`--tmpfs path`).
"""

from __future__ import annotations

import posixpath
import re
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


def volume_mounts(
    mounts: list[dict[str, Any]], volumes: dict[str, dict[str, Any]], volumes_dir: Path
) -> tuple[list[Mount], list[str], Path | None]:
    """A step's `volumeMounts` of the task's emptyDir volumes: one folder per volume and attempt, shared
    by the task's steps as in a pod. Returns (bind mounts, tmpfs mount paths, the folder at /tmp)."""
    binds: list[Mount] = []
    tmpfs: list[str] = []
    tmpdir = None
    for mount in mounts:
        host = volumes_dir / mount["name"] / mount.get("subPath", "")
        host.mkdir(parents=True, exist_ok=True)
        path = mount["mountPath"]
        if (volumes[mount["name"]].get("emptyDir") or {}).get("medium") == "Memory":
            tmpfs.append(path)
        else:
            binds.append(Mount(path, host, bool(mount.get("readOnly"))))
        if path.rstrip("/") == HOST_TMP:
            tmpdir = host
    return binds, tmpfs, tmpdir


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
