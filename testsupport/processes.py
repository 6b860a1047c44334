"""Sluice's own programs as processes started from the repository root: `sluice operator` against
a kubeconfig, Python snippets that must run in a fresh interpreter, and any command whose output a
test reads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_operator_process(
    kubeconfig: str | Path,
    metrics_port: int,
    *,
    stdout: int = subprocess.DEVNULL,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """`sluice operator` as its own process against `kubeconfig`, serving its metrics and /readyz on
    127.0.0.1:`metrics_port`; its webhook receiver takes a free port (port 0), whatever else runs
    on this machine. The caller stops it (SIGTERM) and waits for it."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(ROOT),
        "SLUICE_WEBHOOK_PORT": "0",
    }
    command = [sys.executable, "-m", "controller.cli.main", "operator"]
    return subprocess.Popen(
        [*command, "--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"],
        env=env,
        cwd=ROOT,
        stdout=stdout,
        stderr=stderr,
    )


def run_captured(
    command: Sequence[str | Path],
    *,
    cwd: str | Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`command` run to its end in `cwd` (the repository root unless given), its output captured as
    text (the caller checks the return code)."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_python(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -c code` in a fresh interpreter at the repository root, its output captured as text
    (the caller checks the return code)."""
    return run_captured([sys.executable, "-c", code], env=env, timeout=timeout)
