"""scripts/audit.sh: the minimum git version and the dependency audit's clean failure modes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

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
    assert (
        done.returncode == 0
        and "WARN no advisory source could be used (pip-audit is not installed" in done.stdout
    ), done.stdout
    strict = audit(tmp_path, "2.45.2", python_without_pip_audit, SLUICE_AUDIT_STRICT="1")
    assert (
        strict.returncode == 1
        and "FAIL no advisory source could be used (pip-audit is not installed" in strict.stdout
    )


# --- the pinned versions and the offline advisory database ----------------------------------------

LOCK = REPO / "requirements.lock"


def _load_lock_audit() -> Any:
    spec = importlib.util.spec_from_file_location("lock_audit", REPO / "scripts" / "lock_audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock_audit = _load_lock_audit()


def advisory(ident: str, package: str, events: list[dict[str, str]], **extra: object) -> dict[str, object]:
    """An advisory in the OSV schema (https://ossf.github.io/osv-schema/), as osv.dev publishes them."""
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
        **extra,
    }


def write_db(folder: Path, *items: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        (folder / f"{item['id']}.json").write_text(json.dumps(item))
    return folder


def pinned(name: str) -> str:
    return str(lock_audit.read_pins(LOCK)[lock_audit.canonical(name)])


def test_the_lock_pins_every_package_of_the_environment_ci_installs() -> None:
    pins = lock_audit.read_pins(LOCK)
    for requirement in ("tensorflow-cpu", "kserve", "kopf", "kubernetes", "pathspec", "pip-audit", "pyyaml"):
        assert requirement in pins, requirement
    # CI installs with the lock as constraints: every pinned package present runs at its pin
    assert lock_audit.drift(LOCK) == {}


def test_an_advisory_on_a_pinned_version_fails_the_audit(tmp_path: Path) -> None:
    version = pinned("PyYAML")
    db = write_db(
        tmp_path / "osv",
        advisory("GHSA-test-yaml-0001", "pyyaml", [{"introduced": "0"}, {"fixed": version + ".post1"}]),
        advisory("GHSA-test-old-0002", "PyYAML", [{"introduced": "0"}, {"fixed": "5.4"}]),  # fixed long ago
        advisory("GHSA-test-gone-0003", "PyYAML", [{"introduced": "0"}], withdrawn="2026-02-01T00:00:00Z"),
    )
    done = audit(tmp_path, "2.45.2", sys.executable, SLUICE_ADVISORY_DB=str(db))
    assert done.returncode == 1, done.stdout
    assert f"FAIL known vulnerabilities: pyyaml=={version}: GHSA-test-yaml-0001" in done.stdout, done.stdout
    assert "GHSA-test-old-0002" not in done.stdout and "GHSA-test-gone-0003" not in done.stdout


def test_the_lock_clean_against_an_offline_database_passes_even_when_strict(tmp_path: Path) -> None:
    db = tmp_path / "PyPI-all.zip"  # osv.dev's per-ecosystem archive, as a mirror would hold it
    with zipfile.ZipFile(db, "w") as archive:
        old = advisory("PYSEC-test-0004", "kopf", [{"introduced": "0"}, {"last_affected": "0.1"}])
        archive.writestr("PYSEC-test-0004.json", json.dumps(old))
    done = audit(tmp_path, "2.45.2", sys.executable, SLUICE_ADVISORY_DB=str(db), SLUICE_AUDIT_STRICT="1")
    assert done.returncode == 0, done.stdout
    pins = len(lock_audit.read_pins(LOCK))
    assert f"audit: ok   {pins} packages audited against 1 advisories" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("version", "events", "listed", "affected"),
    [
        (
            "1.5",
            [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
            [],
            False,
        ),
        (
            "2.0.5",
            [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
            [],
            True,
        ),
        ("1.3", [{"introduced": "0"}, {"last_affected": "1.3"}], [], True),
        ("1.3.1", [{"introduced": "0"}, {"last_affected": "1.3"}], [], False),
        ("2.0rc1", [{"introduced": "2.0a1"}, {"fixed": "2.0"}], [], True),
        ("9.9", [], ["9.9"], True),  # named in `versions`, no range
        ("3.0", [{"introduced": "0"}], [], True),  # never fixed
    ],
)
def test_osv_range_semantics(
    version: str, events: list[dict[str, str]], listed: list[str], affected: bool
) -> None:
    item = advisory("X", "demo", events)
    item["affected"][0]["versions"] = listed  # type: ignore[index]
    assert lock_audit.affects(item, "demo", version) is affected


def test_a_package_installed_at_another_version_than_its_pin_fails(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"pytest==0.0.1\nPyYAML=={pinned('PyYAML')}\nnot-installed-anywhere==1.0\n")
    db = write_db(tmp_path / "osv", advisory("GHSA-none", "left-pad", [{"introduced": "0"}]))
    done = audit(tmp_path, "2.45.2", sys.executable, SLUICE_LOCK=str(lock), SLUICE_ADVISORY_DB=str(db))
    assert done.returncode == 1
    assert "FAIL installed packages differ from" in done.stdout and "pytest" in done.stdout, done.stdout
    assert "pyyaml" not in done.stdout.split("differ from", 1)[1].split("\n", 1)[0]
    assert "not-installed-anywhere" not in done.stdout  # extras that are not installed are fine
