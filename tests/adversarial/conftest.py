"""Shared harness of the adversarial suite: a sandbox per case and `sluice` as a user runs it.

Every case runs with its own working folder, `SLUICE_HOME` and `HOME` under a fresh temporary
folder, without `SLUICE_ALLOW_LOCAL_GIT` unless the case sets it. Payloads that would execute
something try to create `sandbox.marker`; `sandbox.assert_untouched()` checks it never appears and
that nothing was written outside the run folders.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CPU_BUDGET_SECONDS = 1.0  # per case: CPU time of the sluice process (robust to a loaded machine)
WALL_LIMIT_SECONDS = 20.0  # a hang guard only; CPU time is the real budget
# What a crash looks like on stderr: the suite's whole point is that none ever appears.
CRASH_SIGNS = ("Traceback (most recent call last)", "internal error", "Segmentation fault", "core dumped")


@dataclass
class Sandbox:
    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def marker(self) -> Path:
        """A file only an executed payload would create."""
        return self.root / "PWNED"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLUICE_", "GIT_")) and k not in ("PYTHONPATH",)
        }
        env.update(
            {
                "SLUICE_HOME": str(self.home),
                "HOME": str(self.home),
                "PYTHONPATH": str(REPO),
                "TF_CPP_MIN_LOG_LEVEL": "3",
            }
        )
        env.update(extra or {})
        return env

    def files_outside_runs(self) -> list[str]:
        """Everything written under the sandbox except run folders, the cache and inputs we wrote."""
        found = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if rel.startswith(("home/runs/", "home/cache/", "inputs/")) or path.is_dir():
                continue
            found.append(rel)
        return found

    def assert_untouched(self) -> None:
        assert not self.marker.exists(), "a payload was executed"
        assert self.files_outside_runs() == [], "files written outside the run folder"

    def write(self, name: str, content: str | bytes) -> Path:
        """An input file, under `inputs/` (not counted as a stray write)."""
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "sandbox")
    box.work.mkdir(parents=True)
    box.home.mkdir()
    (box.root / "inputs").mkdir()
    yield box


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float
    wall_seconds: float


def run_sluice(
    box: Sandbox, *args: str, env: dict[str, str] | None = None, timeout: float = WALL_LIMIT_SECONDS
) -> Outcome:
    """`sluice ARGS` as a subprocess in the sandbox; measures its CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        cwd=box.work,
        env=box.env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        errors="replace",
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Outcome(done.returncode, done.stdout, done.stderr, cpu, wall)


def assert_clean_failure(outcome: Outcome, *fragments: str, code: int = 1) -> None:
    """Exit `code`, one-line messages naming the problem, no traceback, within the budget."""
    text = outcome.stdout + outcome.stderr
    for sign in CRASH_SIGNS:
        assert sign not in text, f"crash: {text[-2000:]}"
    assert outcome.returncode == code, (outcome.returncode, text[-2000:])
    for fragment in fragments:
        assert fragment in outcome.stderr, (fragment, outcome.stderr[-2000:])
    assert len(outcome.stderr) < 20_000, "an error must not echo the input"
    assert outcome.cpu_seconds < CPU_BUDGET_SECONDS, f"took {outcome.cpu_seconds:.2f}s of CPU"
