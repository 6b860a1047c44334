"""Durable model storage in a compiled run (`compile_run(model_store=...)`).

The store is the platform's choice (Helm values -> the operator's environment -> this argument);
the compiler only writes it into the PipelineRun:

- `pvc`: the run's one claim-backed workspace is bound to a folder of the durable claim,
  `<prefix>/<workflow>/<run>` (`persistentVolumeClaim` + `subPath`), instead of a
  `volumeClaimTemplate`. Every task still binds exactly one claim (Tekton's affinity assistant
  refuses a TaskRun with two in its default `coschedule: workspaces` mode), the deploy task
  included, and the model a run trained is on durable storage where it was written: deleting or
  pruning the run deletes the PipelineRun, not the claim.
- `s3`: the run keeps its temporary claim; the step that hands a model to a serving runtime (a
  stage whose `artifacts_env` carries the claim: sluice/deploy) gets the store's settings as
  `SLUICE_MODEL_STORE*` variables and the credentials from the configured Secret through
  `secretKeyRef`, never as values.
"""

from __future__ import annotations

from typing import Any

from controller.serving.store import ModelStore


def model_store_env(store: ModelStore) -> list[dict[str, Any]]:
    """The deploy step's environment for `store`: its settings, then the S3 client's variables."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in store.to_env().items()]
    if store.kind != "s3":
        return env
    if store.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": store.endpoint})
    if store.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": store.region})
    if store.secret:
        for name, key in (
            ("AWS_ACCESS_KEY_ID", store.access_key_id_key),
            ("AWS_SECRET_ACCESS_KEY", store.secret_access_key_key),
        ):
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": store.secret, "key": key}}})
    return env


def durable_run_volume(workspace: str, store: ModelStore, workflow: str, run: str) -> dict[str, Any]:
    """pvc: the run's workspace binding, a folder of the durable claim."""
    return {
        "name": workspace,
        "persistentVolumeClaim": {"claimName": store.claim},
        "subPath": store.run_folder(workflow, run),
    }
