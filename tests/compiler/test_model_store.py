"""Durable model storage in compiled runs: a compiler argument, written into the PipelineRun.

pvc: the run's one workspace is a folder of the durable claim (still one claim per TaskRun);
s3: only the deploy step gets the store's settings, and the credentials only as secretKeyRefs.
Both validate against Tekton's schemas and pass tekton-lint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from controller.compiler import to_yaml
from tests.compiler.conftest import EXAMPLES, compile_example
from tests.compiler.podsecurity import claims_per_task
from tests.compiler.test_run_pods import check_run_pods
from tests.modelstores import PVC_STORE, S3_STORE

SLUICE = os.path.join(os.path.dirname(sys.executable), "sluice")


def tasks(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = run["spec"]["pipelineSpec"]
    return {t["name"]: t for t in [*spec["tasks"], *spec.get("finally", [])]}


def env_of(task: dict[str, Any]) -> dict[str, Any]:
    steps = task["taskSpec"]["steps"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for s in steps for e in s.get("env", [])}


def test_pvc_store_binds_the_run_to_a_folder_of_the_durable_claim(registry, upstream, tekton_lint) -> None:
    run = compile_example("sum-of-two", registry, model_store=PVC_STORE, namespace="ml")
    name = run["metadata"]["name"]
    claims = [
        w for w in run["spec"]["workspaces"] if "persistentVolumeClaim" in w or "volumeClaimTemplate" in w
    ]
    assert claims == [
        {
            "name": "run",
            "persistentVolumeClaim": {"claimName": "sluice-models"},
            "subPath": f"sluice/sum-of-two/{name}",
        }
    ]
    # still one claim per TaskRun (Tekton's affinity assistant), the deploy task included
    assert all(found <= {"sluice-models"} for found in claims_per_task(run).values())
    assert claims_per_task(run)["deploy"] == {"sluice-models"}
    check_run_pods(run)
    deploy = env_of(tasks(run)["deploy"])
    assert deploy["SLUICE_MODEL_STORE"] == "pvc" and deploy["SLUICE_MODEL_STORE_CLAIM"] == "sluice-models"
    assert not any(
        k.startswith("SLUICE_MODEL_STORE") for t in tasks(run) if t != "deploy" for k in env_of(tasks(run)[t])
    )
    assert upstream.errors(run) == []
    assert tekton_lint(run) == []


def test_s3_store_gives_only_the_deploy_step_its_settings_and_secret_references(
    registry, upstream, tekton_lint
) -> None:
    plain = compile_example("sum-of-two", registry)
    run = compile_example("sum-of-two", registry, model_store=S3_STORE)
    assert run["spec"]["workspaces"] == plain["spec"]["workspaces"]  # the run keeps its own volume
    deploy = env_of(tasks(run)["deploy"])
    assert deploy["SLUICE_MODEL_STORE"] == "s3" and deploy["SLUICE_MODEL_STORE_BUCKET"] == "models"
    assert deploy["AWS_ENDPOINT_URL"] == "http://minio.minio:9000"
    assert deploy["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "sluice-model-store", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert deploy["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "sluice-model-store", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    for task_name, task in tasks(run).items():
        if task_name != "deploy":
            assert env_of(task) == env_of(tasks(plain)[task_name]), task_name
    # no credential anywhere as a value: params, results and args carry none
    spec = run["spec"]["pipelineSpec"]
    assert "secretKeyRef" not in json.dumps(spec.get("params", [])) + json.dumps(spec.get("results", []))
    assert upstream.errors(run) == []
    assert tekton_lint(run) == []
    assert to_yaml(run) == to_yaml(compile_example("sum-of-two", registry, model_store=S3_STORE))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_compiles_with_either_store(name, registry) -> None:
    for store in (PVC_STORE, S3_STORE):
        run = compile_example(name, registry, model_store=store)
        check_run_pods(run)


def test_sluice_compile_reads_the_store_from_the_environment() -> None:
    env = {**os.environ, **S3_STORE.to_env()}
    done = subprocess.run(
        [SLUICE, "compile", str(EXAMPLES["sum-of-two"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SLUICE_MODEL_STORE_BUCKET" in done.stdout and "sluice-model-store" in done.stdout
    bad = subprocess.run(
        [SLUICE, "compile", str(EXAMPLES["sum-of-two"])],
        capture_output=True,
        text=True,
        env={**os.environ, "SLUICE_MODEL_STORE": "s3"},
        timeout=120,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("SLUICE_MODEL_STORE: s3 model store needs a bucket")
