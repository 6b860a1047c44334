"""scripts/audit.sh: the minimum git version and the dependency audit's clean failure modes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.conftest import REPO

SCRIPT = REPO / "scripts" / "audit.sh"


def audit(
    tmp_path: Path, git_version: str | None, python: str, **env: str
) -> subprocess.CompletedProcess[str]:
    path = os.environ["PATH"]
    if git_version is not None:  # a git that reports this version, first on PATH
        fake = tmp_path / "bin"
        fake.mkdir(exist_ok=True)
        (fake / "git").write_text(f"#!/bin/sh\necho 'git version {git_version}'\n")
        (fake / "git").chmod(0o755)
        path = f"{fake}:{path}"
    return subprocess.run(
        ["bash", str(SCRIPT), python],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path, **env},
    )


@pytest.fixture
def python_without_pip_audit(tmp_path: Path) -> str:
    """A Python that cannot import pip_audit (isolated mode ignores the venv's site-packages)."""
    script = tmp_path / "python-bare"
    script.write_text(f'#!/bin/sh\nexec {shutil.which("python3") or "/usr/bin/python3"} -I -S "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_real_git_is_new_enough(tmp_path: Path, python_without_pip_audit: str) -> None:
    done = audit(tmp_path, None, python_without_pip_audit)
    assert "audit: ok   git" in done.stdout and "(minimum 2.32.0)" in done.stdout, done.stdout


@pytest.mark.parametrize("version", ["2.31.8", "2.24.0", "1.8.3.1"])
def test_old_git_fails_the_audit(tmp_path: Path, python_without_pip_audit: str, version: str) -> None:
    done = audit(tmp_path, version, python_without_pip_audit)
    assert done.returncode == 1
    assert f"FAIL git {version} is older than 2.32.0" in done.stdout


def test_git_without_the_2024_fixes_is_a_warning(tmp_path: Path, python_without_pip_audit: str) -> None:
    done = audit(tmp_path, "2.35.1", python_without_pip_audit)
    assert done.returncode == 0 and "WARN git 2.35.1" in done.stdout


def test_missing_audit_tool_warns_and_passes_unless_strict(
    tmp_path: Path, python_without_pip_audit: str
) -> None:
    done = audit(tmp_path, "2.45.2", python_without_pip_audit)
    assert done.returncode == 0 and "WARN pip-audit is not installed" in done.stdout, done.stdout
    strict = audit(tmp_path, "2.45.2", python_without_pip_audit, SLUICE_AUDIT_STRICT="1")
    assert strict.returncode == 1 and "FAIL pip-audit is not installed" in strict.stdout
