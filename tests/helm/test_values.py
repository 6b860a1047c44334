"""Bad values stop `helm install` with a message that names the value, before anything is applied."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
import yaml

from tests.helm.conftest import CHART, VALUES, HelmFailed, Render

RunHelm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("values_file", [None, *sorted(p.name for p in VALUES.glob("*.yaml"))])
def test_helm_lint_strict_passes(run_helm: RunHelm, values_file: str | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values_file:
        args += ["--values", str(VALUES / values_file)]
    done = run_helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout


BAD_VALUES = [
    # (what a user got wrong, --set assignments, what the error must say)
    ("misspelt top-level key", ["watchNamespace={ml}"], "additional properties 'watchNamespace' not allowed"),
    ("nested unknown key: replicas are fixed", ["operator.replicas=2"], "additional properties 'replicas'"),
    ("namespace is not a DNS label", ["watchNamespaces={Team_A}"], "/watchNamespaces/0"),
    ("root user", ["operator.runAsUser=0"], "/operator/runAsUser"),
    ("boolean as a string", ["rbac.clusterWide=yes"], "/rbac/clusterWide"),
    ("privileged port without NET_BIND_SERVICE", ["webhooks.port=443"], "/webhooks/port"),
    ("no limits", ["operator.resources.limits=null"], "missing property 'limits'"),
    (
        "unknown deploy target",
        ["runServiceAccount.deployTargets={seldon-v3}"],
        "/runServiceAccount/deployTargets/0",
    ),
    ("malformed digest", ["image.digest=sha256:abc"], "/image/digest"),
    ("pull policy", ["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (
        "plain-HTTP public webhook URL",
        ["webhooks.publicURL=http://sluice.example.com"],
        "/webhooks/publicURL",
    ),
    ("Ingress without a host", ["webhooks.ingress.enabled=true"], "/webhooks/ingress/host"),
    (
        "Ingress for disabled webhooks",
        ["webhooks.enabled=false", "webhooks.ingress.enabled=true", "webhooks.ingress.host=a.example.com"],
        "/webhooks/enabled",
    ),
    (
        "NetworkPolicy that would cut off the API server",
        ["networkPolicy.enabled=true"],
        "/networkPolicy/apiServer/cidrs",
    ),
    (
        "Git host that is not a CIDR",
        ["networkPolicy.gitHosts[0].cidr=github.com"],
        "/networkPolicy/gitHosts/0/cidr",
    ),
    ("scrape interval", ["metrics.serviceMonitor.interval=30"], "/metrics/serviceMonitor/interval"),
    (
        "floating tag",
        ["image.tag=latest"],
        'image tag "latest" of ghcr.io/sluice-dev/sluice-operator is refused',
    ),
    (
        "floating stages tag",
        ["stagesImage.tag=latest"],
        'image tag "latest" of ghcr.io/sluice-dev/sluice-stages',
    ),
]


@pytest.mark.parametrize(("what", "assignments", "message"), BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_bad_values_are_rejected_with_a_clear_message(
    render: Render, what: str, assignments: list[str], message: str
) -> None:
    with pytest.raises(HelmFailed) as failed:
        render(set_=assignments)
    assert message in failed.value.stderr, failed.value.stderr


def test_every_values_key_is_described_by_the_schema() -> None:
    """values.yaml and the schema agree: each default validates and each object is closed."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    open_objects = [path for path in _objects(schema, "$") if not _closed(path[1])]
    assert not open_objects, f"objects without additionalProperties: false: {[p for p, _ in open_objects]}"
    for example in sorted(VALUES.glob("*.yaml")):
        jsonschema.Draft7Validator(schema).validate(_merged(defaults, yaml.safe_load(example.read_text())))


def _merged(base: dict[str, object], override: dict[str, object]) -> dict[str, object]:
    """Values as helm merges them: maps key by key, everything else replaced."""
    result = dict(base)
    for key, value in override.items():
        current = result.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            result[key] = _merged(current, value)
        else:
            result[key] = value
    return result


def _objects(node: object, where: str) -> list[tuple[str, dict[str, object]]]:
    """Every sub-schema that declares named properties: those must not accept unknown keys."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and node.get("type") == "object":
            found.append((where, node))
        for key, child in node.items():
            found += _objects(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _objects(child, f"{where}[{index}]")
    return found


def _closed(schema: dict[str, object]) -> bool:
    return schema.get("additionalProperties") is False
