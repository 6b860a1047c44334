"""A real cluster, the way `scripts/e2e-kind.sh` sets it up: runs only when SLUICE_E2E_KUBECONFIG
is set, and is skipped otherwise.

    bash scripts/e2e-kind.sh --setup-only          # kind, Tekton, cert-manager, KServe, the chart,
                                                   # the images, the in-cluster Git server; kept
    kind get kubeconfig --name sluice-e2e > sluice-e2e.kubeconfig
    SLUICE_E2E_KUBECONFIG=sluice-e2e.kubeconfig pytest tests/e2e -m e2e

Then, through the Kubernetes API, what the script does after its set-up: a Codeset on the Git
server (tests/e2e/repo), which applies the sum-of-two Workflow (runtime: sluice, defaults that pass
its gate); one WorkflowRun; its PipelineRun; the run Succeeded with a `prediction-url`; and a
prediction of 300 + 400 sent from a pod inside the cluster. Every wait is bounded.

Environment (defaults: the script's):
  SLUICE_E2E_NAMESPACE     the namespace the chart watches [ml]
  SLUICE_E2E_GIT_URL       the repository the Codeset follows [git://sluice-git.ml.svc:9418/ml-repo.git]
  SLUICE_E2E_STAGES_IMAGE  the image of the prediction pod [localhost/sluice-stages:0.1.0]
  SLUICE_E2E_RUN_TIMEOUT   seconds for the run, training included [2400]
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

KUBECONFIG = os.environ.get("SLUICE_E2E_KUBECONFIG", "")
NAMESPACE = os.environ.get("SLUICE_E2E_NAMESPACE", "ml")
GIT_URL = os.environ.get("SLUICE_E2E_GIT_URL", f"git://sluice-git.{NAMESPACE}.svc:9418/ml-repo.git")
STAGES_IMAGE = os.environ.get("SLUICE_E2E_STAGES_IMAGE", "localhost/sluice-stages:0.1.0")
RUN_TIMEOUT = float(os.environ.get("SLUICE_E2E_RUN_TIMEOUT", "2400"))
WORKFLOW = "sum-of-two"  # tests/e2e/repo/workflows/sum-of-two.yaml
GROUP, VERSION = "sluice.dev", "v1alpha1"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="needs a cluster: SLUICE_E2E_KUBECONFIG=... after `bash scripts/e2e-kind.sh --setup-only`",
    ),
]

PREDICT = """
import json, sys, urllib.request
body = {"inputs": [{"name": "inputs", "shape": [1, 2], "datatype": "FP32", "data": [300, 400]}]}
request = urllib.request.Request(sys.argv[1], json.dumps(body).encode(), {"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=60))))
"""


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """fetch() until done(result), polling every 5 s; AssertionError with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}: {result}")
        time.sleep(5)


@pytest.fixture(scope="module")
def api() -> Any:
    from kubernetes import client, config

    config.load_kube_config(config_file=os.path.expanduser(KUBECONFIG))
    apps = client.AppsV1Api()
    # What scripts/e2e-kind.sh --setup-only leaves: the operator and the Git server are up.
    for namespace, name in (("sluice-system", "sluice"), (NAMESPACE, "sluice-git")):
        deployment = apps.read_namespaced_deployment(name, namespace)
        assert (deployment.status.ready_replicas or 0) >= 1, f"deployment {namespace}/{name} is not ready"
    return client


@pytest.fixture(scope="module")
def codeset(api: Any) -> Iterator[str]:
    custom = api.CustomObjectsApi()
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Codeset",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"url": GIT_URL, "ref": {"branch": "main"}, "interval": "1m", "sync": {"path": "workflows"}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "codesets", body)
    yield name
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "codesets", name)


def _get(api: Any, plural: str, name: str) -> Callable[[], dict[str, Any]]:
    from kubernetes.client.rest import ApiException

    custom = api.CustomObjectsApi()

    def fetch() -> dict[str, Any]:
        try:
            return dict(custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name))
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise

    return fetch


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def test_a_codeset_run_deploys_a_model_that_answers(api: Any, codeset: str) -> None:
    custom = api.CustomObjectsApi()
    wait_for(_get(api, "codesets", codeset), _ready, 180, f"Codeset {codeset} to fetch {GIT_URL}")
    wait_for(_get(api, "workflows", WORKFLOW), _ready, 180, f"Workflow {WORKFLOW} applied from Git")

    run_name = f"e2e-{uuid.uuid4().hex[:6]}"
    run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkflowRun",
        "metadata": {"name": run_name, "namespace": NAMESPACE},
        "spec": {"workflowRef": {"name": WORKFLOW}},  # defaults: 20000 samples, max-mae 1.0
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "workflowruns", run)
    try:
        pipelineruns = wait_for(
            lambda: [
                p
                for p in custom.list_namespaced_custom_object("tekton.dev", "v1", NAMESPACE, "pipelineruns")[
                    "items"
                ]
                if p["metadata"].get("labels", {}).get("sluice.dev/run") == run_name
            ],
            lambda items: len(items) == 1,
            120,
            f"exactly one PipelineRun of {run_name}",
        )
        assert pipelineruns[0]["metadata"]["ownerReferences"][0]["name"] == run_name
        final = wait_for(
            _get(api, "workflowruns", run_name),
            lambda obj: (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Cancelled"),
            RUN_TIMEOUT,
            f"WorkflowRun {run_name} to finish",
        )
        status = final["status"]
        assert status["phase"] == "Succeeded", status
        url = (status.get("outputs") or {}).get("prediction-url", "")
        predictor = f"http://{WORKFLOW}-predictor.{NAMESPACE}.svc.cluster.local"
        assert url == f"{predictor}/v2/models/model/infer", status
        answer = predict_in_cluster(api, url)
        assert answer["outputs"][0]["data"][0] == pytest.approx(700, abs=5), answer
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "workflowruns", run_name)


def predict_in_cluster(api: Any, url: str) -> dict[str, Any]:
    """POST 300, 400 to `url` from a restricted pod of the stages image; its JSON answer."""
    import json

    core = api.CoreV1Api()
    name = f"e2e-predict-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "predict",
                    "image": STAGES_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", PREDICT, url],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    core.create_namespaced_pod(NAMESPACE, pod)
    try:
        done = wait_for(
            lambda: core.read_namespaced_pod(name, NAMESPACE).status.phase,
            lambda phase: phase in ("Succeeded", "Failed"),
            180,
            f"pod {name}",
        )
        log = core.read_namespaced_pod_log(name, NAMESPACE)
        assert done == "Succeeded", log
        return dict(json.loads(log.strip().splitlines()[-1]))
    finally:
        core.delete_namespaced_pod(name, NAMESPACE)
