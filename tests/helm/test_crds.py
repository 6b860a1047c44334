"""The chart installs exactly the CRDs Sluice ships: `crds/*.yaml` and what `sluice crds` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.conftest import CHART, REPO

CHART_CRDS = CHART / "crds"
SOURCE_CRDS = REPO / "crds"
SYNC = REPO / "scripts" / "sync-chart-crds.sh"


def crd_documents(paths: list[Path]) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["metadata"]["name"]] = doc
    return docs


def test_chart_crds_are_byte_identical_copies_of_crds_dir() -> None:
    source = {p.name: p.read_bytes() for p in SOURCE_CRDS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert sorted(chart) == sorted(source), "run scripts/sync-chart-crds.sh"
    for name, content in source.items():
        assert chart[name] == content, (
            f"charts/sluice/crds/{name} is out of date: run scripts/sync-chart-crds.sh"
        )


def test_chart_crds_match_sluice_crds() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "crds"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    if done.returncode == 2 and "No such command" in done.stderr:
        pytest.skip("`sluice crds` does not exist yet (issue 6)")
    assert done.returncode == 0, done.stderr
    printed = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(done.stdout) if doc}
    assert set(printed) == {"workflows.sluice.dev", "codesets.sluice.dev", "workflowruns.sluice.dev"}
    assert crd_documents(sorted(CHART_CRDS.glob("*.yaml"))) == printed


def _sync(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SLUICE_CRDS_DIR=str(tmp_path / "src"), CHART_CRDS_DIR=str(tmp_path / "chart"))
    return subprocess.run(
        ["bash", str(SYNC), *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )


def test_sync_script_reports_drift_then_fixes_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "chart").mkdir()
    (tmp_path / "src" / "workflows.yaml").write_text("kind: CustomResourceDefinition # v2\n")
    (tmp_path / "chart" / "workflows.yaml").write_text("kind: CustomResourceDefinition # v1\n")
    (tmp_path / "chart" / "removed.yaml").write_text("kind: CustomResourceDefinition\n")

    check = _sync(tmp_path, "--check")
    assert check.returncode == 1
    assert "out of date" in check.stderr and "workflows.yaml" in check.stderr
    assert "stale" in check.stderr and "removed.yaml" in check.stderr
    assert (tmp_path / "chart" / "removed.yaml").exists()  # --check changes nothing

    assert _sync(tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "chart").iterdir()) == ["workflows.yaml"]
    assert (tmp_path / "chart" / "workflows.yaml").read_text().endswith("# v2\n")
    assert _sync(tmp_path, "--check").returncode == 0


def test_sync_script_refuses_unknown_arguments(tmp_path: Path) -> None:
    assert shutil.which("bash")
    done = _sync(tmp_path, "--force")
    assert done.returncode == 2 and "unknown argument" in done.stderr
