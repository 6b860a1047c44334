"""fuzz/fuzz_loader.py works with and without atheris (the CI smoke run of the atheris target)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.conftest import REPO

TARGET = REPO / "fuzz" / "fuzz_loader.py"


def test_smoke_mode_runs_seeds_and_mutations_without_atheris() -> None:
    done = subprocess.run(
        [sys.executable, str(TARGET), "--smoke", "300"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "no crash" in done.stdout and "'spec-error'" in done.stdout and "'compiled'" in done.stdout


def test_target_is_importable_and_classifies_inputs() -> None:
    sys.path.insert(0, str(REPO / "fuzz"))
    try:
        import fuzz_loader
    finally:
        sys.path.remove(str(REPO / "fuzz"))
    target = fuzz_loader.make_target()
    assert target(b"") == "spec-error"
    assert target(b"a: &x [1]\nb: *x\n") == "spec-error"
    assert target((REPO / "workflows" / "sum-of-two.yaml").read_bytes()) == "compiled"


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_atheris_run_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer adds the inputs it finds to the first corpus folder
    corpus.mkdir()
    for seed in (REPO / "workflows").glob("*.yaml"):
        shutil.copy(seed, corpus)
    done = subprocess.run(
        [sys.executable, str(TARGET), "-atheris_runs=3000", "-seed=1", str(corpus)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 3000 in" in done.stderr
