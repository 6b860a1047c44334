"""sluice/deploy's publish step: durable model storage.

S3: a real S3 API server on 127.0.0.1 (moto's), the deploy stage's own upload code, then KServe's
own storage code (the `kserve-storage` package the storage initializer runs) fetches the model and
the project's local model server answers a v2 request with it.
PVC: the URIs and manifests each target gets, against the upstream CRD schemas.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller import serving
from controller.serving.store import ModelStore, ModelStoreError
from stages.common import StageError
from stages.publish import MANIFEST, Published, publish
from tests.modelstores import PVC_STORE
from tests.stages.conftest import Trained, run_stage
from tests.stages.test_deploy_cluster import crd_validator

BUCKET = "models"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "sluice-test-key",
    "AWS_SECRET_ACCESS_KEY": "sluice-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 API server on 127.0.0.1, with an empty bucket `models`."""
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if server is None:
        pytest.skip("moto[server] is not installed (the dev extra)")
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    env = {**os.environ, **S3_ENV}
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLUICE_NAMESPACE", "ml")
    monkeypatch.setenv("SLUICE_WORKFLOW", "sum-of-two")
    monkeypatch.setenv("SLUICE_RUN", "sum-of-two-abc12")
    return ModelStore(
        kind="s3", bucket=BUCKET, endpoint=s3_endpoint, region="us-east-1", secret="model-store",
        service_account="sluice-model-reader", seldon_secret="sluice-rclone",
    )  # fmt: skip


def v2_infer(url: str, rows: list[list[float]]) -> Any:
    flat = [value for row in rows for value in row]
    body = {"inputs": [{"name": "inputs", "shape": [len(rows), 2], "datatype": "FP32", "data": flat}]}
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_a_model_published_to_s3_is_fetched_by_kserve_storage_and_served(
    random_pairs: Trained,
    s3_store: ModelStore,
    s3_endpoint: str,
    tmp_path: Path,
    sluice_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("kserve_storage")
    model = random_pairs.model
    published = publish(model, s3_store, root=model.parents[1], step="deploy")
    assert published.uri == f"s3://{BUCKET}/sluice/ml/sum-of-two/sum-of-two-abc12/deploy"
    assert published.serving_uri("kserve") == published.uri + "/triton"
    assert published.serving_uri("seldon") == published.uri + "/triton/model"

    # KServe's storage initializer: AWS_ENDPOINT_URL and the credentials, as its credential
    # builder sets them from the annotated Secret.
    from kserve_storage import Storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    fetched = tmp_path / "mnt-models"
    repository = tmp_path / "triton"
    Storage.download_files([published.uri, published.serving_uri("kserve")], [str(fetched), str(repository)])
    expected = sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())
    got = sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file())
    assert got == sorted([*expected, MANIFEST])
    for name in expected:
        assert (fetched / name).read_bytes() == (model / name).read_bytes(), name
    manifest = json.loads((fetched / MANIFEST).read_text())
    assert set(manifest["files"]) == set(expected) and manifest["digest"].startswith("sha256:")
    # what Triton loads: the repository with the model folder `model`
    assert (repository / "model/config.pbtxt").is_file()
    assert (repository / "model/1/model.savedmodel/saved_model.pb").is_file()

    # ... and the project's own model server serves what KServe fetched
    deployed = run_stage(
        "deploy",
        ["--model", str(fetched), "--target", "local", "--name", "published"],
        tmp_path,
        ("url", "name"),
        env={"SLUICE_HOME": str(sluice_home)},
    )
    assert deployed.returncode == 0, deployed.stderr
    rows = [[1.5, 2.5], [300.0, 400.0], [999.0, 0.5]]
    answer = v2_infer(deployed.results["url"], rows)
    # the original model's own answers (the sum, within the accuracy of an 8-epoch network)
    import numpy as np

    from stages.model_dir import load_model_dir

    _, original = load_model_dir(model)
    x = np.array(rows, dtype=np.float32)
    data = answer["outputs"][0]["data"]
    assert np.allclose(data, original(x, training=False).numpy().ravel(), atol=1e-4)
    assert np.allclose(data, x.sum(axis=1), atol=15)


def test_publishing_again_rewrites_the_same_objects(
    tmp_path: Path, s3_store: ModelStore, s3_endpoint: str
) -> None:
    model = fake_model(tmp_path)
    retrained = model / "triton" / "model" / "1" / "weights.bin"  # a file the final model lacks
    retrained.parent.mkdir(parents=True)
    retrained.write_bytes(b"old weights")
    publish(model, s3_store, root=tmp_path / "artifacts", step="deploy")
    retrained.unlink()
    first = publish(model, s3_store, root=tmp_path / "artifacts", step="deploy")
    second = publish(model, s3_store, root=tmp_path / "artifacts", step="deploy")
    assert first == second
    from stages.publish import s3_client

    keys = [
        item["Key"]
        for item in s3_client(s3_store).list_objects_v2(
            Bucket=BUCKET, Prefix=first.uri[len("s3://models/") :]
        )["Contents"]
    ]
    assert sorted(keys) == sorted(
        f"sluice/ml/sum-of-two/sum-of-two-abc12/deploy/{name}"
        for name in ("model.json", "triton/model/config.pbtxt", MANIFEST)
    )


def test_publish_failures_are_one_line_without_credentials(
    tmp_path: Path, s3_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_model(tmp_path)
    missing = ModelStore(kind="s3", bucket="no-such-bucket", endpoint=s3_store.endpoint, region="us-east-1")
    with pytest.raises(StageError) as error:
        publish(model, missing, root=tmp_path / "artifacts", step="deploy")
    message = str(error.value)
    assert "s3://no-such-bucket/sluice/ml/sum-of-two/sum-of-two-abc12/deploy/" in message
    assert ("NoSuchBucket" in message or ": 404:" in message) and "\n" not in message
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"] not in message and S3_ENV["AWS_ACCESS_KEY_ID"] not in message

    (model / "empty").write_bytes(b"")
    with pytest.raises(StageError, match="empty files, which KServe would not download: empty"):
        publish(model, s3_store, root=tmp_path / "artifacts", step="deploy")


def fake_model(tmp_path: Path) -> Path:
    model = tmp_path / "artifacts" / "train" / "model"
    (model / "triton" / "model").mkdir(parents=True)
    (model / "model.json").write_text('{"format": "sluice.model/v1"}')
    (model / "triton" / "model" / "config.pbtxt").write_text('name: "model"')
    return model


# ---- PVC ----


def test_pvc_models_are_served_from_the_durable_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_WORKFLOW", "sum-of-two")
    monkeypatch.setenv("SLUICE_RUN", "sum-of-two-abc12")
    root = tmp_path / "volume"  # the run's volume: <prefix>/<workflow>/<run> of the claim
    model = root / "artifacts" / "train" / "model"
    model.mkdir(parents=True)
    published = publish(model, PVC_STORE, root=root, step="deploy")
    folder = "sluice/sum-of-two/sum-of-two-abc12/artifacts/train/model"
    assert published.uri == f"pvc://sluice-models/{folder}"
    assert published.serving_uri("kserve") == f"pvc://sluice-models/{folder}/triton"
    assert published.serving_uri("seldon-v1") == f"pvc://sluice-models/{folder}/triton"
    # Seldon Core 2 cannot read pvc://: the Server mounting the claim reads a local path
    assert published.serving_uri("seldon") == f"/var/sluice-models/{folder}/triton/model"
    assert published.access("seldon") == serving.StorageAccess(requirement="sluice-models")
    assert published.access("kserve") == serving.StorageAccess()
    with pytest.raises(StageError, match="is not on the run's volume"):
        publish(tmp_path / "elsewhere", PVC_STORE, root=root, step="deploy")


@pytest.mark.parametrize("target", ["kserve", "seldon", "seldon-v1"])
@pytest.mark.parametrize("kind", ["pvc", "s3"])
def test_published_manifests_validate_against_upstream_crds(target: str, kind: str) -> None:
    if kind == "pvc":
        published = Published("pvc://sluice-models/sluice/wf/run/artifacts/train/model", PVC_STORE, "x/y")
    else:
        store = ModelStore(
            kind="s3", bucket=BUCKET, service_account="sluice-model-reader", seldon_secret="rc"
        )
        published = Published(f"s3://{BUCKET}/sluice/ml/wf/run/deploy", store)
    manifest = serving.serving_manifest(
        target,
        name="sum-of-two",
        model_uri=published.serving_uri(target),
        namespace="ml",
        storage=published.access(target),
    )
    errors = sorted(crd_validator(target).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]
    spec = manifest["spec"]
    if target == "kserve":
        account = spec["predictor"].get("serviceAccountName")
        assert account == ("sluice-model-reader" if kind == "s3" else None)
        assert spec["predictor"]["model"]["storageUri"].startswith("s3://" if kind == "s3" else "pvc://")
    elif target == "seldon":
        if kind == "s3":
            assert spec["secretName"] == "rc" and spec["requirements"] == ["tensorflow"]
            assert spec["storageUri"].startswith("s3://")  # the rclone remote named `s3`
        else:
            assert "secretName" not in spec and spec["requirements"] == ["tensorflow", "sluice-models"]
            assert spec["storageUri"] == "/var/sluice-models/x/y/triton/model"


def test_model_store_configuration_round_trips_and_refuses_what_cannot_work() -> None:
    store = ModelStore(kind="s3", bucket=BUCKET, endpoint="http://minio.minio:9000", secret="creds")
    assert ModelStore.from_env(store.to_env()) == store
    assert ModelStore.from_env(PVC_STORE.to_env()) == PVC_STORE
    assert ModelStore.from_env({}) is None and ModelStore.from_env({"SLUICE_MODEL_STORE": "none"}) is None
    for bad in (
        {"kind": "nfs"},
        {"kind": "pvc"},
        {"kind": "s3"},
        {"kind": "s3", "bucket": BUCKET, "endpoint": "minio:9000"},
        {"kind": "s3", "bucket": BUCKET, "prefix": "../etc"},
        {"kind": "pvc", "claim": "c", "seldon_mount": "relative"},
    ):
        with pytest.raises(ModelStoreError):
            ModelStore(**bad)  # type: ignore[arg-type]
    with pytest.raises(ModelStoreError):
        store.s3_folder("ml", "..", "run", "deploy")
