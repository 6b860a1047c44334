"""Durable model storage: where deployed models live, apart from the run that trained them.

The platform team chooses it in the Helm chart (`modelStorage`); the operator reads it once from
its environment (`ModelStore.from_env`, the `SLUICE_MODEL_STORE*` variables the chart sets) and
hands it to the compiler, which gives the deploy step the same variables (`to_env`) plus the
credentials as `secretKeyRef`s. The deploy stage reads them back with `from_env`. Nothing here
reads the environment by itself, and no credential is ever a field: only the Secret's name.

- `pvc`: a claim the chart makes in every watched namespace. The run's volume is a folder of it,
  `<prefix>/<workflow>/<run>` (`run_folder`), so the model a run trained is already on durable
  storage; the serving runtime reads it there (`pvc://CLAIM/...` for KServe and Seldon Core 1, the
  Seldon Core 2 Server that mounts the claim at `seldon_mount`).
- `s3`: an S3-compatible bucket. The deploy step uploads the model directory to
  `s3://BUCKET/<prefix>/<namespace>/<workflow>/<run>/<step>/` (`s3_folder`) and serves it from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

KINDS = ("pvc", "s3")
ENV_PREFIX = "SLUICE_MODEL_STORE"
# The Secret keys the S3 credentials are read from unless configured otherwise (also the keys
# KServe's credential builder reads from a Secret attached to a ServiceAccount).
ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"  # the name of a Secret key
DEFAULT_PREFIX = "sluice"
DEFAULT_SELDON_MOUNT = "/var/sluice-models"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# field -> environment variable suffix (after SLUICE_MODEL_STORE_); `kind` is SLUICE_MODEL_STORE.
_FIELDS = {
    "prefix": "PREFIX",
    "claim": "CLAIM",
    "seldon_mount": "SELDON_MOUNT",
    "seldon_requirement": "SELDON_REQUIREMENT",
    "bucket": "BUCKET",
    "endpoint": "ENDPOINT",
    "region": "REGION",
    "secret": "SECRET",
    "access_key_id_key": "ACCESS_KEY_ID_KEY",
    "secret_access_key_key": "SECRET_ACCESS_KEY_KEY",
    "service_account": "SERVICE_ACCOUNT",
    "seldon_secret": "SELDON_SECRET",
}


class ModelStoreError(ValueError):
    """A model storage configuration that cannot work."""


@dataclass(frozen=True)
class ModelStore:
    kind: str  # pvc | s3
    prefix: str = DEFAULT_PREFIX  # folder (pvc) or key prefix (s3) under which Sluice writes
    # pvc
    claim: str | None = None  # the durable claim, the same name in every watched namespace
    seldon_mount: str = DEFAULT_SELDON_MOUNT  # where the Seldon Core 2 Server mounts the claim
    seldon_requirement: str | None = None  # the capability of that Server (Model.spec.requirements)
    # s3
    bucket: str | None = None
    endpoint: str | None = None  # https://s3.example.com or http://minio.minio:9000; None: AWS
    region: str | None = None
    secret: str | None = None  # Secret in the run's namespace holding the credentials
    access_key_id_key: str = ACCESS_KEY_ID
    secret_access_key_key: str = SECRET_ACCESS_KEY
    service_account: str | None = None  # KServe: ServiceAccount whose Secret has the s3 annotations
    seldon_secret: str | None = None  # Seldon Core 2: the rclone storage secret (Model.spec.secretName)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelStoreError(f"model store kind {self.kind!r}: use one of {', '.join(KINDS)}")
        segments = self.prefix.split("/")
        if not self.prefix or not all(_SEGMENT.match(s) for s in segments):
            raise ModelStoreError(f"model store prefix {self.prefix!r}: '/'-separated names, no '..'")
        if self.kind == "pvc":
            if not self.claim or not _NAME.match(self.claim):
                raise ModelStoreError("pvc model store needs the claim's name (a DNS subdomain)")
            if not self.seldon_mount.startswith("/"):
                raise ModelStoreError(f"seldon mount {self.seldon_mount!r} must be an absolute path")
        else:
            if not self.bucket or not _BUCKET.match(self.bucket):
                raise ModelStoreError(f"s3 model store needs a bucket name, not {self.bucket!r}")
            if self.endpoint is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", self.endpoint):
                raise ModelStoreError(f"s3 endpoint {self.endpoint!r} must be an http(s) URL")
            if self.secret is not None and not _NAME.match(self.secret):
                raise ModelStoreError(f"s3 credentials secret {self.secret!r} is not a Secret name")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ModelStore | None:
        """The store the `SLUICE_MODEL_STORE*` variables describe; None when SLUICE_MODEL_STORE is
        unset, empty or `none`. ModelStoreError for a configuration that cannot work."""
        kind = (environ.get(ENV_PREFIX) or "").strip()
        if kind in ("", "none"):
            return None
        given = {f: environ.get(f"{ENV_PREFIX}_{suffix}") for f, suffix in _FIELDS.items()}
        return cls(kind=kind, **{f: v for f, v in given.items() if v})  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The variables `from_env` reads back (no credentials: those are the Secret's)."""
        env = {ENV_PREFIX: self.kind}
        for field, suffix in _FIELDS.items():
            value = getattr(self, field)
            if value is not None:
                env[f"{ENV_PREFIX}_{suffix}"] = value
        return env

    # ---- layout ----

    def run_folder(self, workflow: str, run: str) -> str:
        """pvc: the folder of the claim a run's volume is (its subPath)."""
        return f"{self.prefix}/{_segment(workflow)}/{_segment(run)}"

    def s3_folder(self, namespace: str, workflow: str, run: str, step: str) -> str:
        """s3: the key prefix (no trailing '/') a deploy step publishes its model under: versioned
        by run and step, so a retry rewrites the same objects and no two deployments share one."""
        parts = (namespace, workflow, run, step)
        return "/".join([self.prefix, *(_segment(p) for p in parts)])

    def s3_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _segment(value: str) -> str:
    if not _SEGMENT.match(value) or value in (".", ".."):
        raise ModelStoreError(f"{value!r} cannot be a storage path segment")
    return value
