"""A `medium: Memory` emptyDir's `sizeLimit` under `--containers`, where the engine can honour it.

On Kubernetes a Memory emptyDir is a tmpfs sized by its `sizeLimit`: a write beyond it fails (no
space left on device). podman run as root can make one: a volume of type tmpfs (its size in
`nr_blocks` pages: podman 4 reads `size=` as a disk quota and refuses it) kept mounted with
`podman volume mount` for the whole attempt - an engine unmounts a tmpfs volume when the last
container using it stops, which would empty it between two steps. The task's folder for the volume
(volumes.py) becomes a link to that mount, so the steps' bind mounts stay as they are. Elsewhere -
docker (no `volume mount`), rootless podman (its mounts live in its own namespace), host
processes - the volume stays a folder on /dev/shm, shared but not bounded.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
from pathlib import Path
from typing import Any

from controller import settings
from controller.executors.local.engines import Engine
from controller.units import parse_quantity


def size_limits(volumes: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Bytes of each `medium: Memory` volume with a `sizeLimit` above 0 (checked before the run)."""
    limits = {}
    for name, volume in volumes.items():
        empty_dir = volume.get("emptyDir") or {}
        if empty_dir.get("medium") == "Memory" and empty_dir.get("sizeLimit") is not None:
            size = math.ceil(parse_quantity(empty_dir["sizeLimit"]))
            if size > 0:
                limits[name] = size
    return limits


def can_size(engine: Engine | None) -> bool:
    return engine is not None and engine.podman and os.geteuid() == 0


async def hold(engine: Engine, run: str, prefix: str, folders: dict[str, tuple[Path, int]]) -> list[str]:
    """Back each volume's folder (name -> (folder, bytes)) by a tmpfs of that size, mounted until
    `release`; the engine volumes made (named `<prefix>-<volume>`, labelled with the run)."""
    held = []
    for name, (folder, size) in folders.items():
        volume = f"{prefix}-{name}"
        mountpoint = await asyncio.to_thread(_mount, engine, volume, size, run)
        if mountpoint is None:  # not on this machine: the folder stays as it is, unbounded
            continue
        held.append(volume)
        subfolders = [p.relative_to(folder) for p in folder.rglob("*") if p.is_dir()]  # subPaths
        shutil.rmtree(folder)
        folder.symlink_to(mountpoint, target_is_directory=True)
        for sub in subfolders:
            (mountpoint / sub).mkdir(parents=True, exist_ok=True)
    return held


def _mount(engine: Engine, volume: str, size: int, run: str) -> Path | None:
    blocks = max(1, math.ceil(size / os.sysconf("SC_PAGE_SIZE")))
    engine.run("volume", "rm", "--force", volume)  # a killed run's leftover
    made = engine.run(
        "volume", "create", "--label", f"{settings.LABEL_RUN}={run}",
        "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", f"o=nr_blocks={blocks},mode=0777",
        volume,
    )  # fmt: skip
    mounted = engine.run("volume", "mount", volume) if made.returncode == 0 else made
    mountpoint = Path(mounted.stdout.strip())
    if mounted.returncode != 0 or not mountpoint.is_absolute() or not mountpoint.is_dir():
        engine.run("volume", "rm", "--force", volume)
        return None
    return mountpoint


async def release(engine: Engine, volumes: list[str]) -> None:
    """Unmount and remove the attempt's volumes: the memory is given back."""
    for volume in volumes:
        await asyncio.to_thread(engine.run, "volume", "rm", "--force", volume)


def release_run(engine: Engine, run: str) -> None:
    """Every volume of `run` still there when it ends (an attempt cut short by a cancel)."""
    listed = engine.run("volume", "ls", "--quiet", "--filter", f"label={settings.LABEL_RUN}={run}")
    for volume in listed.stdout.split() if listed.returncode == 0 else []:
        engine.run("volume", "rm", "--force", volume)
