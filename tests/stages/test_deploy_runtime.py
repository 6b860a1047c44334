"""sluice/deploy `--runtime sluice`: the model directory itself is served (no Triton repository
needed), in the stages image the compiler hands over in SLUICE_SERVING_IMAGE; a target that cannot
run it, or a missing image, fails before anything is published or applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.serving.store import ModelStore
from stages.common import StageError
from stages.deploy import SERVING_IMAGE_ENV, cluster_model_uri, runtime_image
from stages.publish import Published
from tests.stages.conftest import run_stage


def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "artifacts" / "train" / "model"
    directory.mkdir(parents=True)
    (directory / "model.json").write_text("{}")  # no triton/: runtime sluice does not need one
    return directory


def test_the_model_directory_itself_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_ARTIFACTS_PVC", "claim")
    directory = model_dir(tmp_path)
    assert cluster_model_uri(directory, "kserve", "sluice") == "pvc://claim/train/model"
    assert cluster_model_uri(directory, "kserve", "triton") == "pvc://claim/train/model/triton"
    assert cluster_model_uri(directory, "kserve") == "pvc://claim/train/model/triton"
    store = ModelStore(kind="s3", bucket="models")
    published = Published("s3://models/sluice/ml/wf/run/deploy", store)
    assert published.serving_uri("kserve", "sluice") == "s3://models/sluice/ml/wf/run/deploy"
    assert published.serving_uri("kserve") == "s3://models/sluice/ml/wf/run/deploy/triton"


def test_the_image_comes_from_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVING_IMAGE_ENV, raising=False)
    assert runtime_image("kserve", None) is None and runtime_image("kserve", "triton") is None
    with pytest.raises(StageError, match="needs the stages image in SLUICE_SERVING_IMAGE"):
        runtime_image("kserve", "sluice")
    monkeypatch.setenv(SERVING_IMAGE_ENV, "localhost/sluice-stages:0.1.0")
    assert runtime_image("kserve", "sluice") == "localhost/sluice-stages:0.1.0"
    with pytest.raises(StageError, match="runtime 'sluice' is only supported by the kserve target"):
        runtime_image("seldon", "sluice")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--target", "kserve", "--runtime", "sluice"], {}, "needs the stages image in SLUICE_SERVING_IMAGE"),
        (
            ["--target", "seldon-v1", "--runtime", "sluice"],
            {SERVING_IMAGE_ENV: "localhost/sluice-stages:0.1.0"},
            "runtime 'sluice' is only supported by the kserve target",
        ),
    ],
)
def test_refused_before_anything_is_applied(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    run = run_stage(
        "deploy",
        ["--model", str(model_dir(tmp_path)), *args],
        tmp_path,
        ("url",),
        env={
            "SLUICE_EXECUTOR": "",
            "SLUICE_ARTIFACTS_PVC": "claim",
            "KUBECONFIG": str(tmp_path / "none"),
            **env,
        },
    )
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "Triton" not in run.stderr and run.results == {}
