"""Every shell script parses (`bash -n`), and passes shellcheck at warning level where shellcheck is
installed (Debian's `shellcheck` package). scripts/e2e-kind.sh cannot run here (it needs docker and
kind): this, and its versions matching docs/install.md's, is what is checked of it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# scripts/ and the images' build scripts (images/pip-env.sh)
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.sh"), *(ROOT / "images").glob("*.sh")])
E2E = ROOT / "scripts" / "e2e-kind.sh"
# script variable -> the row of docs/install.md's version table
PINNED = {
    "KIND_NODE_IMAGE": "Kubernetes (kind node image)",
    "TEKTON_PIPELINES_VERSION": "Tekton Pipelines (v1 API)",
    "CERT_MANAGER_VERSION": "cert-manager (needed by KServe)",
    "KSERVE_VERSION": "KServe (RawDeployment mode)",
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    result = subprocess.run(
        ["shellcheck", "--severity=warning", "--external-sources", str(script)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pinned_versions() -> dict[str, str]:
    text = E2E.read_text()
    found = dict(re.findall(r'^([A-Z_]+)="([^"$]+)"$', text, flags=re.MULTILINE))
    return {name: found[name] for name in PINNED}


def test_e2e_pins_versions_at_the_top_and_install_md_lists_the_same() -> None:
    versions = pinned_versions()
    assert versions["KIND_NODE_IMAGE"].startswith("kindest/node:v")
    doc = (ROOT / "docs" / "install.md").read_text()
    for name, row in PINNED.items():
        match = re.search(rf"^\| {re.escape(row)} \| (\S+) ", doc, flags=re.MULTILINE)
        assert match, f"docs/install.md has no version row {row!r}"
        expected = versions[name].removeprefix("kindest/node:")
        assert match.group(1) == expected, f"{row}: docs say {match.group(1)}, the script {expected}"
        if name != "KIND_NODE_IMAGE":
            assert versions[name] in doc


def test_install_md_walks_the_scripts_commands() -> None:
    """The kind section of docs/install.md runs what the script runs, with the same versions."""
    doc = (ROOT / "docs" / "install.md").read_text()
    section = doc[doc.index("## Try it on kind") :]
    section = section[: section.index("\n## ", 1)]
    versions = pinned_versions()
    for needle in (
        f"kind create cluster --name sluice-e2e --image {versions['KIND_NODE_IMAGE']}",
        f"pipeline/previous/{versions['TEKTON_PIPELINES_VERSION']}/release.yaml",
        f"releases/download/{versions['CERT_MANAGER_VERSION']}/cert-manager.yaml",
        f"--version {versions['KSERVE_VERSION']}",
        "kserve.controller.deploymentMode=RawDeployment",
        "SLUICE_CONTAINER_ENGINE=docker bash scripts/images.sh",
        "kind load docker-image",
        "modelStorage.type=pvc",
        "SLUICE_ALLOW_LOCAL_GIT=1",
        "git daemon",
        "kind: Codeset",
        "kind: WorkflowRun",
        "prediction-url",
    ):
        assert needle in section, needle
