"""The images of scripts/images.sh run under a task pod's restrictions.

Read-only root filesystem, a uid the image does not know, no capabilities, no network, tmpfs at
/tmp and at Tekton's HOME, the artifacts folder bound at /workspace/artifacts: the stages image
prepares, trains (2 epochs) and evaluates a model there, has git, and the operator image starts.
Skipped where there is no container engine or the images are not built (`bash scripts/images.sh`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import containers

pytestmark = pytest.mark.slow

LAYERS = '[{"dense": 16, "activation": "relu"}, {"dense": 1}]'


@pytest.fixture(scope="module")
def images() -> containers.Images:
    found = containers.engine_setup()
    if found is None:
        pytest.skip("no container engine (podman or docker)")
    engine, env = found
    images = containers.Images(engine, env, containers.image_refs())
    for ref in images.refs.values():
        if containers.inspect(images, ref) is None:
            pytest.skip(f"no image {ref}: build it with `bash scripts/images.sh`")
    return images


def restricted(images: containers.Images, ref: str, *command: str, artifacts: Path | None = None) -> str:
    """COMMAND in the image (its first word as the entrypoint), under a restricted pod's limits."""
    flags = [
        *("run", "--rm", "--network", "none", "--read-only", "--user", "65532:65532"),
        *("--cap-drop", "ALL", "--security-opt", "no-new-privileges"),
        *("--tmpfs", "/tmp", "--tmpfs", "/tekton/home", "-e", "HOME=/tekton/home"),
    ]
    if artifacts is not None:
        flags += ["-v", f"{artifacts}:/workspace/artifacts"]
    done = images.run(*flags, "--entrypoint", command[0], ref, *command[1:], timeout=300)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_stages_image_prepares_trains_and_evaluates_read_only(
    images: containers.Images, tmp_path: Path
) -> None:
    tmp_path.chmod(0o777)  # written by uid 65532
    ref = images.refs["stages"]
    out = "/workspace/artifacts"
    assert "usage" in restricted(images, ref, "python", "-m", "stages.prepare", "--help").lower()
    assert restricted(images, ref, "git", "--version").startswith("git version")
    script = (
        f"python -m stages.prepare --generator sum-of-two --samples 2000 --artifacts-dir {out}/prepare"
        f" --result rows={out}/rows"
        f" && python -m stages.train_keras --dataset {out}/prepare/dataset --layers '{LAYERS}' --epochs 2"
        f" --artifacts-dir {out}/train --result val-mae={out}/val-mae"
        f" && python -m stages.evaluate --model {out}/train/model --dataset {out}/prepare/dataset"
        f" --artifacts-dir {out}/evaluate --result mae={out}/mae"
    )
    restricted(images, ref, "sh", "-c", script, artifacts=tmp_path)
    assert int((tmp_path / "rows").read_text()) > 0
    assert float((tmp_path / "mae").read_text()) >= 0
    assert (tmp_path / "train" / "model").is_dir()


def test_operator_image_starts_read_only_as_any_user(images: containers.Images) -> None:
    ref = images.refs["operator"]
    out = restricted(images, ref, "sluice", "operator", "--help")
    assert "--namespace" in out
    info = containers.inspect(images, ref)
    assert info is not None
    config = info.get("Config") or {}
    assert config.get("User") == "10001:10001", json.dumps(config)
    # Only the venv: no pip, no Kubernetes client, none of the stages image's packages.
    names = ("pip", "kubernetes", "tensorflow")
    probe = f"import importlib.util as u; print([n for n in {names!r} if u.find_spec(n)])"
    found = restricted(images, ref, "python", "-c", probe)
    assert found.strip() == "[]", found
