"""The local engine's own cost, against `import tensorflow` measured in the same run (issue 5).

- per-task orchestration overhead: a chain of N tasks each running the prepare stage through
  `LocalRun` (cache off, one at a time), minus the same stage command run N times directly, per task;
- start time of `sluice --help` and of `sluice validate workflows/sum-of-two.yaml` (whole process).

Goal for each: <= 0.1x the time of `import tensorflow` in a fresh interpreter. These measure the
engine alone, so they run with MLflow tracking off (`SLUICE_MLFLOW=off`).

- MLflow tracking's cost (issue 19, when the `mlflow` extra is installed): a sum-of-two run
  logging to the local default store in the Sluice home, minus the same run with tracking off.
  Goal: <= 10 % of the untracked run's wall time. The store's database is created first, untimed:
  MLflow creates its tables once per Sluice home (several seconds), not once per run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import row

REPO = Path(__file__).resolve().parent.parent
GOAL = "<= 0.1x import tensorflow"


def _wall(argv: list[str], repeat: int) -> float:
    """Median wall time of a command (seconds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _import_tensorflow(repeat: int) -> float:
    code = "import time; t = time.perf_counter(); import tensorflow; print(time.perf_counter() - t)"
    env_code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; " + code
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", env_code], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return statistics.median(runs)


def _stage_argv(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "stages.prepare", "--generator", "sum-of-two", "--samples", "1000",
        "--seed", "1", "--result", f"dataset={out}/result", "--artifacts-dir", str(out),
    ]  # fmt: skip


def _chain(tasks: int, trivial: bool) -> dict[str, Any]:
    chain = []
    for i in range(tasks):
        task: dict[str, Any] = {
            "name": f"t{i}",
            "workspaces": [{"name": "artifacts", "workspace": "artifacts"}],
            "taskSpec": {
                "workspaces": [{"name": "artifacts"}],
                "results": [{"name": "dataset"}],
                "steps": [{
                    "name": "prepare", "image": "stages",
                    "command": ["python", "-m", "stages.prepare"],
                    "args": ["--generator", "sum-of-two", "--samples", "1000", "--seed", "1",
                             "--result", "dataset=$(results.dataset.path)",
                             "--artifacts-dir", f"$(workspaces.artifacts.path)/t{i}"],
                }],
            },
        }  # fmt: skip
        if trivial:
            task["taskSpec"]["steps"] = [{"name": "true", "image": "busybox", "command": ["true"]}]
        if i:
            task["runAfter"] = [f"t{i - 1}"]
        chain.append(task)
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": f"bench-{int(time.time() * 1000)}"},
        "spec": {
            "workspaces": [{"name": "artifacts", "volumeClaimTemplate": {"spec": {}}}],
            "pipelineSpec": {"workspaces": [{"name": "artifacts"}], "tasks": chain},
        },
    }


def _overhead_per_task(tasks: int, rounds: int, trivial: bool = False) -> tuple[float, float]:
    """(orchestrated - direct seconds per task, direct seconds per task): best of `rounds`, alternating."""
    from controller.executors.local.engine import LocalRun

    directs, orchestrated = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            started = time.perf_counter()
            for i in range(tasks):
                argv = ["true"] if trivial else _stage_argv(Path(tmp) / f"direct-{r}-{i}")
                subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
            directs.append((time.perf_counter() - started) / tasks)
            run = LocalRun(_chain(tasks, trivial), Path(tmp) / f"home-{r}", parallel=1, use_cache=False)
            started = time.perf_counter()
            record = asyncio.run(run.run())
            orchestrated.append((time.perf_counter() - started) / tasks)
            if record.phase != "Succeeded":
                raise RuntimeError(f"benchmark run failed: {record.message}")
    return min(orchestrated) - min(directs), min(directs)


def _sum_of_two_seconds(home: Path, tracking: bool, samples: int) -> float:
    """Wall time of `sluice run workflows/sum-of-two.yaml` (cache off) in a fresh Sluice home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(SLUICE_HOME=str(home), SLUICE_MLFLOW="on" if tracking else "off")
    argv = [sys.executable, "-m", "controller.cli.main", "run", "workflows/sum-of-two.yaml"]
    argv += ["--no-cache", "--input", f"samples={samples}", "--input", "max-mae=0"]  # no deploy
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def _create_store(home: Path) -> None:
    """The local store's database (MLflow creates its tables on first use, several seconds)."""
    (home / "mlflow").mkdir(parents=True)
    code = (
        "import mlflow; "
        f"mlflow.MlflowClient(tracking_uri='sqlite:///{home / 'mlflow' / 'mlflow.db'}').search_experiments()"
    )
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)


def mlflow_rows(quick: bool) -> list[dict[str, Any]]:
    """Tracking's cost on a sum-of-two run, against the same run untracked (alternating, best of)."""
    if importlib.util.find_spec("mlflow") is None:
        return []
    rounds, samples = (1, 2000) if quick else (2, 20000)
    plain, tracked = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            plain.append(_sum_of_two_seconds(Path(tmp) / f"plain-{r}", False, samples))
            home = Path(tmp) / f"tracked-{r}"
            _create_store(home)  # once per Sluice home, not per run: untimed
            tracked.append(_sum_of_two_seconds(home, True, samples))
    base = min(plain)
    cost = min(tracked) - base
    return [
        row(
            "local",
            f"MLflow tracking cost on a sum-of-two run ({samples} samples, local store)",
            cost,
            "s",
            "the untracked run",
            base,
            "<= 0.1x the untracked run",
            cost <= 0.1 * base,
        )
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    os.environ["SLUICE_MLFLOW"] = "off"  # the engine's own cost; tracking is measured apart
    repeat = 1 if quick else 3
    tasks = 3 if quick else 8
    tensorflow = _import_tensorflow(repeat)
    limit = 0.1 * tensorflow
    overhead, direct = _overhead_per_task(tasks, repeat + 1)
    bare, _ = _overhead_per_task(tasks * 2, repeat + 1, trivial=True)
    help_time = _wall([sys.executable, "-m", "controller.cli.main", "--help"], repeat + 2)
    validate_time = _wall(
        [sys.executable, "-m", "controller.cli.main", "validate", "workflows/sum-of-two.yaml"], repeat + 2
    )
    base, tf_ms = "import tensorflow", tensorflow * 1e3
    figures = [
        (
            f"orchestration overhead per task ({tasks} tasks; the stage alone: {direct * 1e3:.0f} ms)",
            overhead,
        ),
        ("orchestration overhead per task (step: /bin/true)", bare),
        ("sluice --help start time", help_time),
        ("sluice validate workflows/sum-of-two.yaml", validate_time),
    ]
    rows = [
        row("local", metric, value * 1e3, "ms", base, tf_ms, GOAL, value <= limit)
        for metric, value in figures
    ]
    os.environ.pop("SLUICE_MLFLOW", None)
    return rows + mlflow_rows(quick)
