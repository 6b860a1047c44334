"""Publish a trained model to the durable model store before it is served (sluice/deploy).

`publish(model_dir, store, ...)` returns where the model directory now lives for good and how
each serving target reaches it (`Published`):

- `pvc`: the run's volume is already a folder of the durable claim (`ModelStore.run_folder`), so
  nothing moves: the model directory's path inside the claim is its address.
- `s3`: every file of the model directory is uploaded under a key prefix versioned by namespace,
  workflow, run and step (`ModelStore.s3_folder`), then `sluice-model.json` (each file's size and
  sha256, and their digest) is written last and the listing is checked against it. Only then does
  the deploy step apply a serving manifest that names the prefix, so a reader never sees a partial
  model, and a retry rewrites the same objects. Credentials come from the environment the
  compiled step is given from a Secret (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), read by
  boto3 itself; they are never arguments, results or log lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.digests import file_sha256
from controller.serving import StorageAccess, get_target
from controller.serving.store import ModelStore, ModelStoreError
from stages.common import StageError

MANIFEST = "sluice-model.json"


@dataclass(frozen=True)
class Published:
    """Where a published model directory lives (`uri`) and what a serving target needs."""

    uri: str  # the model directory: pvc://CLAIM/FOLDER or s3://BUCKET/KEY
    store: ModelStore
    local_path: str | None = None  # pvc: the folder inside the claim (for Seldon Core 2's Server mount)

    def serving_uri(self, target: str, runtime: str | None = None) -> str:
        """The storage URI of `target`'s runtime (its own unless `runtime` names another): its
        path under the model directory (`ServingTarget.model_path`)."""
        path = get_target(target).model_path(runtime)
        if target == "seldon" and self.store.kind == "pvc":
            # Seldon Core 2 cannot read pvc://: its Server mounts the claim (see the chart).
            return f"{self.store.seldon_mount}/{self.local_path}/{path}"
        return f"{self.uri}/{path}" if path else self.uri

    def access(self, target: str) -> StorageAccess:
        if self.store.kind == "pvc":
            return StorageAccess(requirement=self.store.seldon_requirement if target == "seldon" else None)
        if target == "kserve":
            return StorageAccess(service_account=self.store.service_account)
        if target == "seldon":
            return StorageAccess(secret=self.store.seldon_secret)
        return StorageAccess()


def store_from_env() -> ModelStore | None:
    try:
        return ModelStore.from_env(os.environ)
    except ModelStoreError as exc:
        raise StageError(f"model store: {exc}") from None


def publish(model_dir: Path, store: ModelStore, *, root: Path, step: str) -> Published:
    """Publish `model_dir` (under the artifacts `root`) to `store`; StageError when it cannot."""
    namespace = os.environ.get("SLUICE_NAMESPACE") or "default"
    workflow = os.environ.get("SLUICE_WORKFLOW") or "workflow"
    run = os.environ.get("SLUICE_RUN") or "run"
    try:
        if store.kind == "pvc":
            try:
                relative = model_dir.relative_to(root).as_posix()
            except ValueError:
                raise StageError(f"model {model_dir} is not on the run's volume {root}") from None
            folder = f"{store.run_folder(workflow, run)}/{relative}"
            return Published(f"pvc://{store.claim}/{folder}", store, local_path=folder)
        key = store.s3_folder(namespace, workflow, run, step)
    except ModelStoreError as exc:
        raise StageError(f"model store: {exc}") from None
    upload_s3(model_dir, store, key)
    return Published(store.s3_uri(key), store)


def model_files(model_dir: Path) -> dict[str, Path]:
    """Every regular file of the model directory by its '/'-separated relative path; a symbolic
    link is refused (it could point anywhere)."""
    files: dict[str, Path] = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_symlink():
            raise StageError(f"model {model_dir} has a symbolic link {path.relative_to(model_dir)}")
        if path.is_file():
            files[path.relative_to(model_dir).as_posix()] = path
    if not files:
        raise StageError(f"model {model_dir} has no files")
    return files


def s3_client(store: ModelStore) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        # S3-compatible servers (MinIO, Ceph, moto) are reached by path, not virtual host
        s3={"addressing_style": "path" if store.endpoint else "auto"},
    )
    return boto3.client("s3", endpoint_url=store.endpoint, region_name=store.region, config=config)


def upload_s3(model_dir: Path, store: ModelStore, key: str) -> dict[str, Any]:
    """Upload the model directory under `key`/, then its manifest; check the listing. Returns the
    manifest."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    files = model_files(model_dir)
    entries = {
        name: {"size": path.stat().st_size, "sha256": file_sha256(path)} for name, path in files.items()
    }
    empty = [name for name, entry in entries.items() if not entry["size"]]
    if empty:  # KServe's storage initializer skips empty objects: the copy would differ
        raise StageError(f"model {model_dir} has empty files, which KServe would not download: {empty[0]}")
    listing = "".join(f"{name}\0{entry['sha256']}\n" for name, entry in sorted(entries.items()))
    manifest = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "PublishedModel",
        "digest": "sha256:" + hashlib.sha256(listing.encode()).hexdigest(),
        "files": entries,
    }
    bucket = store.bucket
    where = f"s3://{bucket}/{key}/"
    if not bucket:
        raise StageError(f"publishing to {where} failed: the model store names no bucket")
    client = s3_client(store)
    try:
        client.head_bucket(Bucket=store.bucket)
        for name, path in files.items():
            client.upload_file(str(path), store.bucket, f"{key}/{name}")
        # Files of an earlier publish under the same key (a retried deploy of a retrained model)
        # go before the manifest is written: KServe downloads every object under the prefix.
        stale = [name for name in _listing(client, bucket, key) if name not in entries]
        for name in stale:
            client.delete_object(Bucket=store.bucket, Key=f"{key}/{name}")
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        client.put_object(
            Bucket=store.bucket, Key=f"{key}/{MANIFEST}", Body=body, ContentType="application/json"
        )
        found = _listing(client, bucket, key)
    except ClientError as exc:
        error = exc.response.get("Error") or {}
        raise StageError(
            f"publishing to {where} failed: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except (BotoCoreError, S3UploadFailedError) as exc:
        raise StageError(f"publishing to {where} failed: {exc}") from None
    missing = [name for name, entry in entries.items() if found.get(name) != entry["size"]]
    if missing:
        raise StageError(f"publishing to {where}: {missing[0]} is missing or has another size after upload")
    print(f"deploy: published {len(files)} files ({manifest['digest']}) to {where}", flush=True)
    return manifest


def _listing(client: Any, bucket: str, key: str) -> dict[str, int]:
    """Object name (below `key`/) -> size."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key}/"):
        for item in page.get("Contents") or []:
            found[item["Key"][len(key) + 1 :]] = item["Size"]
    return found
