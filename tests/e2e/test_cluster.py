"""A real cluster (kind/k3d with Tekton and KServe): runs only when SLUICE_E2E_KUBECONFIG is set.

    SLUICE_E2E_KUBECONFIG=~/.kube/config pytest tests/e2e -m e2e

The suite installs the CRDs, starts `sluice operator` against that cluster, applies the
sum-of-two workflow and one WorkflowRun, and waits for Tekton to run it to the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECONFIG = os.environ.get("SLUICE_E2E_KUBECONFIG", "")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="set SLUICE_E2E_KUBECONFIG to run against a real cluster"),
]
GROUP, VERSION = "sluice.dev", "v1alpha1"


@pytest.fixture(scope="module")
def clients() -> Any:
    from kubernetes import client, config

    config.load_kube_config(config_file=os.path.expanduser(KUBECONFIG))
    return client


@pytest.fixture(scope="module")
def namespace(clients: Any) -> Iterator[str]:
    name = f"sluice-e2e-{uuid.uuid4().hex[:6]}"
    core = clients.CoreV1Api()
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def operator(clients: Any, namespace: str) -> Iterator[subprocess.Popen[bytes]]:
    from kubernetes.client.rest import ApiException

    extensions = clients.ApiextensionsV1Api()
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = extensions.read_custom_resource_definition(crd["metadata"]["name"])
            crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
            extensions.replace_custom_resource_definition(crd["metadata"]["name"], crd)
    time.sleep(2)  # CRDs become Established
    env = {**os.environ, "KUBECONFIG": os.path.expanduser(KUBECONFIG)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli.main",
            "operator",
            "--namespace",
            namespace,
            "--metrics-port",
            "0",
        ],
        env=env,
        cwd=ROOT,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def _wait(fetch: Any, done: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        obj = fetch()
        if done(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {obj}")
        time.sleep(2)


def test_workflow_run_goes_through_tekton_to_the_end(clients: Any, namespace: str, operator: Any) -> None:
    custom = clients.CustomObjectsApi()
    workflow = yaml.safe_load((ROOT / "workflows" / "sum-of-two.yaml").read_text())
    workflow["metadata"] = {"name": "sum-of-two", "namespace": namespace}
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", workflow)

    def get(plural: str, name: str) -> Any:
        return lambda: custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)

    def ready(obj: Any) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _wait(get("workflows", "sum-of-two"), ready, 120, "Workflow Ready")
    run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkflowRun",
        "metadata": {"name": "e2e-run", "namespace": namespace},
        "spec": {"workflowRef": {"name": "sum-of-two"}, "inputs": {"samples": 2000}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "workflowruns", run)
    pipelinerun = _wait(
        lambda: custom.list_namespaced_custom_object("tekton.dev", "v1", namespace, "pipelineruns")["items"],
        lambda items: len(items) == 1,
        120,
        "exactly one PipelineRun",
    )[0]
    assert pipelinerun["metadata"]["labels"]["sluice.dev/run"] == "e2e-run"
    final = _wait(
        get("workflowruns", "e2e-run"),
        lambda obj: (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Cancelled"),
        1800,
        "the run to finish",
    )
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert final["status"]["outputs"].get("prediction-url", "").startswith("http")
