"""A container step's MLflow records name paths as its container sees them; the run's logger on
the host reads them through the step's mounts (`controller.tracking_spool.on_host`) and refuses
any path that would leave them: a step in a container cannot make the logger read a host file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller import tracking_spool


def test_a_container_record_is_read_only_inside_its_steps_mounts(tmp_path: Path) -> None:
    artifacts, outside = tmp_path / "artifacts", tmp_path / "home"
    (artifacts / "train" / "model").mkdir(parents=True)
    outside.mkdir()
    (outside / "secrets.yaml").write_text("token: s3cret\n")
    folder = tmp_path / "mounts"
    tracking_spool.write_mounts(folder, "train", {"/workspace/artifacts": str(artifacts)})
    record = {"kind": "training", "step": "train", "model_dir": "/workspace/artifacts/train/model"}

    mapped = tracking_spool.on_host(folder, record)
    assert mapped["model_dir"] == str((artifacts / "train" / "model").resolve())
    for escape in ("/workspace/artifacts/../../home", str(outside), "/workspace/artifactsX/train"):
        with pytest.raises(ValueError, match="not inside a folder mounted"):
            tracking_spool.on_host(folder, {**record, "model_dir": escape})
    os.symlink(outside / "secrets.yaml", artifacts / "train" / "model" / "model.keras")
    with pytest.raises(ValueError, match="not inside a folder mounted"):
        tracking_spool.on_host(folder, record)
    for step in ("evaluate", "../train", ".train"):  # no mounts written for it: nothing is read
        with pytest.raises(ValueError, match="no mounts are known"):
            tracking_spool.on_host(folder, {**record, "step": step})
    assert tracking_spool.on_host(folder, {"kind": "end", "step": "other"}) == {
        "kind": "end",
        "step": "other",
    }
