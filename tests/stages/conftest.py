"""Fixtures for the stage tests: run stage programs as a step would, share trained models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class StageRun:
    returncode: int
    stdout: str
    stderr: str
    results: dict[str, str]


def run_stage(
    module: str,
    args: list[str],
    tmp: Path,
    outputs: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> StageRun:
    """`python -m stages.<module> ARGS --result NAME=PATH...` the way the compiled step runs it."""
    result_dir = tmp / "results"
    result_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", f"stages.{module}", *args]
    for name in outputs:
        command += ["--result", f"{name}={result_dir / name}"]
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=tmp)
    results = {name: (result_dir / name).read_text() for name in outputs if (result_dir / name).exists()}
    return StageRun(done.returncode, done.stdout, done.stderr, results)


def prepare(tmp: Path, generator: str, *extra: str) -> Path:
    run = run_stage(
        "prepare", ["--generator", generator, *extra, "--artifacts-dir", str(tmp)], tmp, ("dataset",)
    )
    assert run.returncode == 0, run.stderr
    return Path(run.results["dataset"])


def train(tmp: Path, dataset: Path, *extra: str) -> tuple[Path, StageRun]:
    run = run_stage(
        "train_keras",
        ["--dataset", str(dataset), *extra, "--artifacts-dir", str(tmp)],
        tmp,
        ("model", "val-mae", "val-loss"),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return Path(run.results["model"]), run


@dataclass
class Trained:
    dataset: Path
    model: Path
    run: StageRun


SUM_LAYERS = '[{"dense":20,"activation":"relu"},{"dense":20,"activation":"relu"},{"dense":1}]'


def _sum_network(tmp: Path, generator: str) -> Trained:
    """The sum-of-two network, trained (seeded) on 8000 samples of `generator`."""
    dataset = prepare(tmp, generator, "--samples", "8000", "--seed", "1")
    model, run = train(tmp, dataset, "--layers", SUM_LAYERS, "--epochs", "8", "--seed", "1")
    return Trained(dataset, model, run)


@pytest.fixture(scope="session")
def random_pairs(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The fix: a network trained on independent random pairs."""
    return _sum_network(tmp_path_factory.mktemp("random-pairs"), "sum-of-two")


@pytest.fixture(scope="session")
def equal_pairs(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The article's mistake: the same network trained on (i, i) only."""
    return _sum_network(tmp_path_factory.mktemp("equal-pairs"), "sum-of-two-equal-pairs")


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private SLUICE_HOME; every endpoint started in it is stopped afterwards."""
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    yield home
    from stages.endpoints import list_endpoints, stop_endpoint

    for endpoint in list_endpoints():
        stop_endpoint(endpoint.name)
