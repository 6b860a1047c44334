"""modelStorage: Helm values -> the operator's SLUICE_MODEL_STORE* environment -> ModelStore, and the
per-namespace objects the chart makes (the claim, the Seldon Core 2 Server, KServe's reader
ServiceAccount), validated against Kubernetes' and Seldon's schemas."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controller.serving.store import ModelStore
from tests.compiler.upstream import _DEFAULT_ROOT
from tests.helm.conftest import HelmFailed, Render, by_kind
from tests.helm.test_render import KUBERNETES_VERSION, env_of
from tests.modelstores import PVC_STORE, S3_STORE

EXTRA = _DEFAULT_ROOT.parent / "upstream-extra"
PVC = [
    "watchNamespaces={team-a,team-b}",
    "modelStorage.type=pvc",
    "modelStorage.pvc.accessModes={ReadWriteMany}",
    "modelStorage.pvc.storageClassName=nfs",
    "modelStorage.pvc.seldonServer.enabled=true",
]
S3 = [
    "watchNamespaces={team-a,team-b}",
    "modelStorage.type=s3",
    "modelStorage.s3.endpoint=http://minio.minio:9000",
    "modelStorage.s3.bucket=models",
    "modelStorage.s3.seldonSecretName=sluice-rclone-s3",
]


@functools.cache
def server_crd_validator() -> jsonschema.protocols.Validator:
    documents = yaml.safe_load_all((EXTRA / "seldon/mlops.seldon.io_servers.yaml").read_text())
    crd = next(d for d in documents if d and d.get("kind") == "CustomResourceDefinition")
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


def store_of(objects: list[Any]) -> ModelStore | None:
    env = {k: v for k, v in env_of(objects).items() if v is not None}
    return ModelStore.from_env(env)


def test_no_model_storage_by_default(render: Render) -> None:
    objects = render()
    assert store_of(objects) is None
    assert not by_kind(objects, "PersistentVolumeClaim") and not by_kind(objects, "Server")


def test_pvc_storage_makes_a_claim_and_a_seldon_server_per_namespace(render: Render) -> None:
    objects = render(set_=PVC)
    assert store_of(objects) == replace(PVC_STORE, seldon_mount="/var/sluice-models")
    claims = by_kind(objects, "PersistentVolumeClaim")
    assert sorted(c["metadata"]["namespace"] for c in claims) == ["team-a", "team-b"]
    for claim in claims:
        assert claim["metadata"]["name"] == "sluice-models"
        assert (
            claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"] == "nfs"
        )
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        kubernetes_validate.validate(claim, KUBERNETES_VERSION, strict=True)
    servers = by_kind(objects, "Server")
    assert sorted(s["metadata"]["namespace"] for s in servers) == ["team-a", "team-b"]
    for server in servers:
        errors = [e.message for e in server_crd_validator().iter_errors(server)]
        assert not errors, errors
        spec = server["spec"]
        assert spec["serverConfig"] == "triton" and spec["extraCapabilities"] == ["sluice-models"]
        assert spec["podSpec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "sluice-models"
        mount = spec["podSpec"]["containers"][0]["volumeMounts"][0]
        assert mount["mountPath"] == "/var/sluice-models" and mount["readOnly"] is True


def test_s3_storage_configures_the_operator_and_kserves_reader(render: Render) -> None:
    objects = render(set_=S3)
    assert store_of(objects) == S3_STORE
    env = env_of(objects)
    assert not any("secretKeyRef" in str(v) for v in env.values())  # the operator holds no credential
    readers = [
        a for a in by_kind(objects, "ServiceAccount") if a["metadata"]["name"] == "sluice-model-reader"
    ]
    assert sorted(a["metadata"]["namespace"] for a in readers) == ["team-a", "team-b"]
    for account in readers:
        assert account["secrets"] == [{"name": "sluice-model-store"}]
        assert account["automountServiceAccountToken"] is False
        kubernetes_validate.validate(account, KUBERNETES_VERSION, strict=True)
    assert not by_kind(objects, "PersistentVolumeClaim")


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["modelStorage.type=nfs"], "/modelStorage/type"),
        (["modelStorage.type=s3"], "/modelStorage/s3/bucket"),
        (
            ["modelStorage.type=s3", "modelStorage.s3.bucket=models", "modelStorage.s3.endpoint=minio:9000"],
            "endpoint",
        ),
        (["modelStorage.prefix=../x"], "/modelStorage/prefix"),
    ],
)
def test_bad_model_storage_values_are_refused(render: Render, assignments: list[str], message: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        render(set_=assignments)
    assert message in failed.value.stderr, failed.value.stderr
