"""The model stores the tests configure, as the chart's examples make them (docs/install.md): a
durable claim `sluice-models` with its Seldon Core 2 Server, and an S3 bucket on the in-cluster
MinIO with the chart's default Secret, KServe reader ServiceAccount and Seldon rclone secret."""

from __future__ import annotations

from controller.serving.store import ModelStore

PVC_STORE = ModelStore(kind="pvc", claim="sluice-models", seldon_requirement="sluice-models")
S3_STORE = ModelStore(
    kind="s3",
    bucket="models",
    endpoint="http://minio.minio:9000",
    region="us-east-1",
    secret="sluice-model-store",
    service_account="sluice-model-reader",
    seldon_secret="sluice-rclone-s3",
)
