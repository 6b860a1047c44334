"""Container images (scripts/images.sh): how big each image is and what makes it so.

Rows per image: its size against its base image's, the part that is neither base nor venv (git and
the image's user; the goal is that nothing else is there), the venv's largest packages, the largest
layers, and whether pip or a compiler is in the image. The operator image's goal is <= 300 MB.

The engine and the image names are scripts/images.sh's (scripts/container-engine.sh sets podman
up). Nothing is built with --quick: images that exist are measured, and with no engine or no image
one row says what was skipped (`met: null`). Without --quick, missing images are built first.

Each measure is one function of `MEASURES` taking the `Images` at hand. `step_overhead_rows`: the
same trivial step run N times in one task by the local executor, as host processes and with
`--containers` (the stages image, restricted as a compiled step is), in the same run of the
benchmark: the per-step cost of a container on top of a host process (goal <= 1 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import row
from testsupport.pipelineruns import one_task_run, restricted_step

NAME = "containers"
REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000  # podman and docker report sizes in SI units
OPERATOR_GOAL_MB = 300.0
SITE_PACKAGES = "/opt/sluice/lib/python3.11/site-packages"
TOP_PACKAGES = 6
TOP_LAYERS = 3


@dataclass
class Images:
    engine: str
    env: dict[str, str]
    refs: dict[str, str]  # "stages" / "operator" -> reference
    built_seconds: float | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    quick: bool = False

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.engine, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )


def skip(reason: str) -> dict[str, Any]:
    """The one row printed when there is nothing to measure: the reason, and met null."""
    return {
        "benchmark": NAME,
        "metric": f"skipped: {reason}",
        "value": None,
        "unit": "",
        "baseline": "",
        "baseline_value": None,
        "ratio": None,
        "goal": f"operator image <= {OPERATOR_GOAL_MB:.0f} MB; images hold only base, venv and git",
        "met": None,
    }


def engine_setup() -> tuple[str, dict[str, str]] | None:
    """scripts/container-engine.sh's engine and environment (CONTAINERS_CONF), installing nothing."""
    script = (
        "source scripts/container-engine.sh && sluice_engine_setup"
        ' && printf "%s\\n%s" "$SLUICE_ENGINE" "${CONTAINERS_CONF:-}"'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "SLUICE_NO_INSTALL": "1"},
        timeout=60,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    engine, _, conf = done.stdout.partition("\n")
    if not shutil.which(engine):
        return None
    env = dict(os.environ)
    if conf:
        env["CONTAINERS_CONF"] = conf
    return engine, env


def image_refs() -> dict[str, str]:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    prefix = os.environ.get("SLUICE_IMAGE_PREFIX", "localhost")
    tag = os.environ.get("SLUICE_IMAGE_TAG", version)
    return {name: f"{prefix}/sluice-{name}:{tag}" for name in ("stages", "operator")}


def inspect(images: Images, ref: str) -> dict[str, Any] | None:
    done = images.run("image", "inspect", ref)
    if done.returncode != 0:
        return None
    found = json.loads(done.stdout)
    return found[0] if found else None


def build(images: Images) -> bool:
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", "scripts/images.sh"], cwd=REPO, env=images.env, stdout=subprocess.PIPE, text=True
    )
    images.built_seconds = time.perf_counter() - started
    return done.returncode == 0


def size_rows(images: Images) -> list[dict[str, Any]]:
    rows = []
    for name, ref in images.refs.items():
        info = images.info[name]
        size = info["Size"] / MB
        labels = (info.get("Config") or {}).get("Labels") or {}
        base_ref = labels.get("org.opencontainers.image.base.name", "")
        base = inspect(images, base_ref) if base_ref else None
        base_size = base["Size"] / MB if base else 0.0
        info["sluice.base_mb"] = base_size
        if name == "operator":
            goal, met = f"<= {OPERATOR_GOAL_MB:.0f} MB", size <= OPERATOR_GOAL_MB
        else:  # no size goal: TensorFlow is most of it; "beyond base + venv" below is the check
            goal, met = "base + venv + git only", True
        rows.append(
            row(
                NAME,
                f"{name} image size ({ref})",
                size,
                "MB",
                f"its base {base_ref or '?'}",
                base_size,
                goal,
                met,
            )
        )
    return rows


CONTENT_SCRIPT = f"""
cd {SITE_PACKAGES} && du -sk -- * | sort -rn | head -{TOP_PACKAGES}
echo "venv $(du -sk /opt/sluice | cut -f1)"
echo "pip $(ls -d {SITE_PACKAGES}/pip /usr/lib/python3/dist-packages/pip \\
  /usr/local/lib/python3*/site-packages/pip 2>/dev/null | wc -l)"
echo "compilers $(for c in gcc cc c++ g++ clang; do command -v $c; done | wc -l)"
echo "git $(git --version >/dev/null 2>&1 && echo 1 || echo 0)"
"""


def content_rows(images: Images) -> list[dict[str, Any]]:
    """What is inside: the venv and its largest packages, pip, compilers, git."""
    rows = []
    for name, ref in images.refs.items():
        done = images.run(
            "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", ref, "-c", CONTENT_SCRIPT
        )
        if done.returncode != 0:
            print(f"containers: {ref}: {done.stderr.strip()}", file=sys.stderr)
            continue
        total = images.info[name]["Size"] / MB
        facts: dict[str, int] = {}
        packages: list[tuple[str, float]] = []
        for line in done.stdout.splitlines():
            first, _, second = line.partition("\t") if "\t" in line else line.partition(" ")
            if first.isdigit():
                packages.append((second, int(first) * 1024 / MB))
            elif second.strip().isdigit():
                facts[first] = int(second)
        venv = facts.get("venv", 0) * 1024 / MB
        rows.append(row(NAME, f"{name} venv /opt/sluice", venv, "MB", "whole image", total, "", True))
        base = float(images.info[name].get("sluice.base_mb") or 0.0)
        if base:
            # What the Dockerfile adds besides the venv (the user entry; git when the base lacks it).
            other = max(0.0, total - base - venv)
            rows.append(
                row(
                    NAME,
                    f"{name} image beyond base + venv",
                    other,
                    "MB",
                    "whole image",
                    total,
                    "<= 5 MB",
                    other <= 5,
                )
            )
        for package, size in packages:
            rows.append(
                row(NAME, f"{name} venv: {package}", size, "MB", "the venv", venv, "largest packages", True)
            )
        for fact, goal in (("pip", 0), ("compilers", 0), ("git", 1)):
            rows.append(
                row(
                    NAME,
                    f"{name} image: {fact} present",
                    facts.get(fact, -1),
                    "count",
                    "wanted",
                    goal,
                    f"{'none' if goal == 0 else 'present'}",
                    facts.get(fact, -1) == goal,
                    ratio=1.0 if facts.get(fact, -1) == goal else 0.0,
                )
            )
    return rows


def layer_rows(images: Images) -> list[dict[str, Any]]:
    rows = []
    for name, ref in images.refs.items():
        done = images.run("history", "--format", "json", ref)
        if done.returncode != 0:
            continue
        layers = json.loads(done.stdout)
        total = images.info[name]["Size"] / MB

        def size_of(layer: dict[str, Any]) -> float:
            return float(layer.get("size") or layer.get("Size") or 0)

        for layer in sorted(layers, key=size_of, reverse=True)[:TOP_LAYERS]:
            created = str(layer.get("CreatedBy") or layer.get("createdBy") or layer.get("comment") or "?")
            created = " ".join(created.replace("/bin/sh -c ", "").split())
            if created.startswith("#(nop) ADD file:"):
                created = "the base's root filesystem"
            elif created.startswith("#(nop) COPY dir:"):
                created = "COPY from a build stage into /opt/sluice (the venv)"
            created = created.removeprefix("#(nop) ")[:80]
            rows.append(
                row(
                    NAME,
                    f"{name} layer: {created}",
                    size_of(layer) / MB,
                    "MB",
                    "whole image",
                    total,
                    "",
                    True,
                )
            )
    return rows


def build_rows(images: Images) -> list[dict[str, Any]]:
    if images.built_seconds is None:
        return []
    return [row(NAME, "build both images (scripts/images.sh)", images.built_seconds, "s", "", 0.0, "", True)]


STEP_OVERHEAD_GOAL_SECONDS = 1.0


def _steps_run(image: str, steps: int) -> dict[str, Any]:
    """One task of `steps` trivial steps, each restricted as `sluice compile` restricts a step."""
    trivial = [restricted_step(f"s{i}", image, command=["sh", "-c", "echo ok"]) for i in range(steps)]
    return one_task_run("overhead", "trivial", trivial)


def _timed_run(image: str, steps: int, engine: Any, name: str) -> float:
    """Seconds the local executor takes for the task (its steps only, no compile)."""
    import asyncio
    import tempfile

    from controller.executors.local.engine import LocalRun

    obj = _steps_run(image, steps)
    obj["metadata"]["name"] = name
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as home:
        run = LocalRun(obj, Path(home), use_cache=False, engine=engine)
        started = time.perf_counter()
        record = asyncio.run(run.run())
        took = time.perf_counter() - started
    if record.phase != "Succeeded":
        raise RuntimeError(f"{name}: {record.message}")
    return took


def step_overhead_rows(images: Images) -> list[dict[str, Any]]:
    """Per-step time of a trivial step: in its container against as a host process, same run."""
    from controller.executors.local.engines import Engine

    program = shutil.which(images.engine)
    if program is None:
        return []
    engine = Engine(program, images.env)
    steps = 3 if images.quick else 10
    image = images.refs["stages"]
    _timed_run(image, 1, engine, "overhead-warm")  # the image's layers into the page cache
    host = _timed_run(image, steps, None, "overhead-host") / steps
    container = _timed_run(image, steps, engine, "overhead-containers") / steps
    extra = container - host
    goal = f"<= {STEP_OVERHEAD_GOAL_SECONDS:g} s on top of a host process"
    return [
        row(NAME, f"per-step time, host process ({steps} trivial steps)", host, "s", "", 0.0, "", True, 1.0),
        row(
            NAME,
            f"per-step time in a container ({images.engine}, restricted; {steps} steps)",
            container,
            "s",
            "host process, same run",
            host,
            goal,
            extra <= STEP_OVERHEAD_GOAL_SECONDS,
        ),
        row(
            NAME,
            "per-step overhead of a container over a host process",
            extra,
            "s",
            "goal",
            STEP_OVERHEAD_GOAL_SECONDS,
            goal,
            extra <= STEP_OVERHEAD_GOAL_SECONDS,
        ),
    ]


MEASURES: list[Callable[[Images], list[dict[str, Any]]]] = [
    build_rows,
    size_rows,
    layer_rows,
    content_rows,
    step_overhead_rows,
]


def run(quick: bool = False) -> list[dict[str, Any]]:
    found = engine_setup()
    if found is None:
        return [skip("no container engine (podman or docker); see docs/containers.md")]
    engine, env = found
    images = Images(engine, env, image_refs(), quick=quick)
    missing = [ref for ref in images.refs.values() if inspect(images, ref) is None]
    if missing and not quick and not build(images):
        return [skip(f"scripts/images.sh failed with {engine}")]
    for name, ref in images.refs.items():
        info = inspect(images, ref)
        if info is None:
            return [skip(f"no image {ref}: build it with `bash scripts/images.sh`")]
        images.info[name] = info
    rows: list[dict[str, Any]] = []
    for measure in MEASURES:
        rows.extend(measure(images))
    return rows
