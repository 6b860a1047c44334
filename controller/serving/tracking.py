"""MLflow tracking for compiled runs: the platform's choice, like durable model storage.

The Helm chart's `mlflow` values become the operator's `SLUICE_MLFLOW_*` variables
(`MlflowTracking.from_env`); the operator hands the setting to `compile_run(mlflow=...)`, which
writes it into every built-in stage's step (docs/mlflow.md): `MLFLOW_TRACKING_URI` and
`MLFLOW_S3_ENDPOINT_URL` as values, MLflow's and the S3 client's credential variables from the
configured Secret through optional `secretKeyRef`s (a key the Secret lacks is left unset), never
as values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "SLUICE_MLFLOW"
# The Secret's keys are the variable names themselves, each optional: basic auth, a token, and
# the S3 artifact store's keys.
CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


@dataclass(frozen=True)
class MlflowTracking:
    tracking_uri: str
    secret: str = ""  # a Secret in the run's namespace with (some of) CREDENTIAL_VARIABLES as keys
    s3_endpoint: str = ""  # MLFLOW_S3_ENDPOINT_URL: an S3-compatible artifact store (MinIO)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MlflowTracking | None:
        """The setting the `SLUICE_MLFLOW_*` variables describe; None when no tracking URI is set."""
        uri = environ.get(f"{ENV_PREFIX}_TRACKING_URI", "").strip()
        if not uri:
            return None
        return cls(
            tracking_uri=uri,
            secret=environ.get(f"{ENV_PREFIX}_SECRET", "").strip(),
            s3_endpoint=environ.get(f"{ENV_PREFIX}_S3_ENDPOINT_URL", "").strip(),
        )

    def step_env(self) -> list[dict[str, Any]]:
        """A built-in stage's environment entries for this setting."""
        env: list[dict[str, Any]] = [{"name": "MLFLOW_TRACKING_URI", "value": self.tracking_uri}]
        if self.s3_endpoint:
            env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": self.s3_endpoint})
        if self.secret:
            for variable in CREDENTIAL_VARIABLES:
                ref = {"name": self.secret, "key": variable, "optional": True}
                env.append({"name": variable, "valueFrom": {"secretKeyRef": ref}})
        return env

    def extension_documents(self, documents: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """`documents` (FuseML extension descriptions, as `ExtensionRegistry.from_sources` takes
        them) with this setting as FuseML's `mlflow` extension, unless one of them provides
        `product: mlflow` (a registered extension takes precedence). The operator and
        `sluice compile` both compile with this."""
        if any(isinstance(doc, dict) and doc.get("product") == "mlflow" for _, doc in documents):
            return documents
        return [*documents, ("values mlflow", self.fuseml_extension())]

    def fuseml_extension(self) -> dict[str, Any]:
        """The same setting as FuseML's `mlflow` extension (docs/fuseml-compatibility.md): a FuseML
        step that requires `product: mlflow` (services `mlflow-tracking` and `s3`) gets the
        tracking URI, the S3 endpoint and the Secret's S3 keys the built-in stages get, so both
        log to one server. The operator adds it when no registered extension provides `mlflow`."""
        store: dict[str, Any] = {
            "id": "mlflow-store",
            "resource": "s3",
            "category": "model-store",
            "endpoints": [
                {"url": self.s3_endpoint or self.tracking_uri, "type": "internal",
                 "configuration": {"MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint} if self.s3_endpoint else {}}
            ],
        }  # fmt: skip
        document: dict[str, Any] = {
            "name": "sluice-mlflow",
            "product": "mlflow",
            "version": "0",
            "description": "MLflow tracking as the platform configures it (Helm values mlflow)",
            "services": [
                {
                    "id": "mlflow-tracking",
                    "resource": "mlflow-tracking",
                    "category": "experiment-tracking",
                    "endpoints": [
                        {
                            "url": self.tracking_uri,
                            "type": "internal",
                            "configuration": {"MLFLOW_TRACKING_URI": self.tracking_uri},
                        }
                    ],
                },
                store,
            ],
        }
        if self.secret:
            store["credentials"] = [{"id": "platform"}]
            transforms = [
                {"configvalue": key, "secret": self.secret, "secretvalue": key}
                for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            ]
            document["servicecredentials"] = [
                {"serviceid": "mlflow-store", "credentials": [{"id": "platform", "transform": transforms}]}
            ]
        return document
