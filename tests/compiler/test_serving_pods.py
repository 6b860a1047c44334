"""Every serving manifest: the pods it asks for pass the `restricted` Pod Security profile, and it
carries Sluice's labels, so the documented uninstall (`-l sluice.dev/workflow`) finds it.

What a manifest decides is checked (tests/compiler/podsecurity.py); containers the platforms inject
(KServe's storage initializer, Seldon Core 1's executor) and Seldon Core 2's Server pods are the
platform's configuration, covered in docs/install.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller import serving
from controller.settings import LABEL_RUN, LABEL_WORKFLOW
from tests.compiler.podsecurity import restricted_violations

LABELS = serving.run_labels("sum-of-two", "sum-of-two-5d1c2e7a9b")
# KServe's PredictorSpec inlines a PodSpec next to its own fields.
PREDICTOR_ONLY = {"model", "minReplicas", "maxReplicas", "canaryTrafficPercent", "scaleTarget", "scaleMetric"}


def serving_pods(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs a serving manifest decides."""
    spec = manifest["spec"]
    if manifest["kind"] == "InferenceService":
        predictor = spec["predictor"]
        pod = {k: v for k, v in predictor.items() if k not in PREDICTOR_ONLY}
        model = {**predictor["model"], "name": "kserve-container"}
        return [{**pod, "containers": [*pod.get("containers", []), model]}]
    if manifest["kind"] == "SeldonDeployment":
        return [c["spec"] for p in spec["predictors"] for c in p.get("componentSpecs", [])]
    return []  # Seldon Core 2 Model: no pod of its own (the Server's pods run it)


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in serving.TARGETS:
        for extra in ({}, {"min_replicas": 1, "max_replicas": 3}):
            manifest = serving.serving_manifest(
                name, name="sum-of-two", model_uri="pvc://claim/model", namespace="ml", labels=LABELS, **extra
            )
            found.append((name, manifest))
    return found


@pytest.mark.parametrize(("target", "manifest"), manifests(), ids=lambda v: v if isinstance(v, str) else "")
def test_serving_pods_are_restricted(target: str, manifest: dict[str, Any]) -> None:
    pods = serving_pods(manifest)
    assert pods or manifest["kind"] == "Model"
    for pod in pods:
        assert restricted_violations(pod) == [], (target, pod)
        context = pod["securityContext"]
        assert context["runAsUser"] == serving.SERVING_UID and context["runAsUser"] != 0


@pytest.mark.parametrize(("target", "manifest"), manifests(), ids=lambda v: v if isinstance(v, str) else "")
def test_serving_manifests_carry_the_run_labels(target: str, manifest: dict[str, Any]) -> None:
    labels = manifest["metadata"]["labels"]
    assert labels[LABEL_WORKFLOW] == "sum-of-two" and labels[LABEL_RUN] == "sum-of-two-5d1c2e7a9b"
    assert labels["app.kubernetes.io/managed-by"] == "sluice"


def test_run_labels_are_valid_label_values() -> None:
    labels = serving.run_labels("w" * 80, "run/with spaces-")
    assert all(len(v) <= 63 and v[0].isalnum() and v[-1].isalnum() for v in labels.values())
    assert serving.run_labels(None, "") == {}


@pytest.mark.parametrize(("target", "manifest"), manifests(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_upstream_schemas_take_labels_and_security_contexts(target, manifest, upstream) -> None:
    assert upstream.errors(manifest) == []
