"""`readOnly` workspaces for host processes: the folder is mounted read-only for the step alone.

chmod cannot do it (the executor often runs as root, and root ignores file modes), so a step that
has a read-only workspace starts inside its own mount namespace (`unshare --mount`; as another user
also a user namespace, `--map-root-user`, in which it runs as root of that namespace) where
readonly_exec.py remounts the folder read-only: a write fails with EROFS, as in a pod. Other steps
and tasks, which share the folder, keep writing to it. Where namespaces are not allowed, a run with
a read-only workspace is refused before anything runs (`--containers` mounts it `:ro` instead).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HELPER = Path(__file__).with_name("readonly_exec.py")


def _unshare() -> list[str]:
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [shutil.which("unshare") or "unshare", "--mount", "--propagation", "private", *user, "--"]


@functools.cache
def unavailable() -> str:
    """Why read-only folders cannot be made on this machine; empty when they can (probed once)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "`unshare` and `mount` (util-linux) are not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        done = subprocess.run(
            [*wrap(["true"], [(probe, probe)])], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if done.returncode != 0:
        return f"this machine does not allow a private mount namespace ({done.stderr.strip()[:200]})"
    return ""


def wrap(argv: list[str], mounts: list[tuple[Path, Path]], chdir: str | None = None) -> list[str]:
    """`argv` run with each (folder, at) of `mounts`: `folder` mounted read-only at `at`, then in
    `chdir` when given (a folder under a mount: its mounted view). Paths are arguments, never shell code."""
    if not mounts:
        return argv
    pairs = [str(p) for folder, at in mounts for p in (folder, at)]
    moved = ["--chdir", chdir] if chdir else []
    return [*_unshare(), sys.executable, "-I", str(HELPER), *moved, *pairs, "--", *argv]


def views(
    spec: dict[str, Any], workspaces: dict[str, tuple[Any, Path | None]], under: Path
) -> list[tuple[Path, Path]]:
    """(folder, view) for each bound task workspace declared `readOnly`: `view` is an empty folder of
    its own (`under/<name>`) that the step sees the workspace at, mounted read-only over it."""
    found = []
    for decl in spec.get("workspaces") or []:
        path = workspaces.get(decl["name"], (None, None))[1]
        if decl.get("readOnly") and path is not None:
            view = under / decl["name"]
            view.mkdir(parents=True, exist_ok=True)
            found.append((path, view))
    return found


def read_only_workspaces(pipelinerun: dict[str, Any]) -> list[str]:
    """JSON paths of the task workspaces and step volume mounts declared `readOnly: true`."""
    found = []
    pipeline = pipelinerun["spec"]["pipelineSpec"]
    for section in ("tasks", "finally"):
        for i, task in enumerate(pipeline.get(section) or []):
            where = f"$.spec.pipelineSpec.{section}[{i}].taskSpec"
            for j, decl in enumerate(task["taskSpec"].get("workspaces") or []):
                if decl.get("readOnly"):
                    found.append(f"{where}.workspaces[{j}].readOnly")
            for j, step in enumerate(task["taskSpec"].get("steps") or []):
                for k, mount in enumerate(step.get("volumeMounts") or []):
                    if mount.get("readOnly"):
                        found.append(f"{where}.steps[{j}].volumeMounts[{k}].readOnly")
    return found
