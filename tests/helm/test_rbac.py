"""The chart's RBAC, rule by rule: what a platform team reviews before anything else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.conftest import RELEASE_NAMESPACE, Manifest, Render, by_kind, one
from tests.helm.test_render import SCENARIOS

Rules = dict[tuple[str, str], list[str]]

# Exactly what the operator may do, per (apiGroup, resource), verbs in the chart's order.
OPERATOR_RULES: Rules = {
    ("sluice.dev", "workflows"): ["get", "list", "watch", "create", "update", "patch", "delete"],
    ("sluice.dev", "codesets"): ["get", "list", "watch", "patch"],
    ("sluice.dev", "workflowruns"): ["get", "list", "watch", "create", "patch", "delete"],
    ("sluice.dev", "workflows/status"): ["get", "patch"],
    ("sluice.dev", "codesets/status"): ["get", "patch"],
    ("sluice.dev", "workflowruns/status"): ["get", "patch"],
    ("sluice.dev", "workflowruns/finalizers"): ["update"],
    ("tekton.dev", "pipelineruns"): ["get", "list", "watch", "create", "patch", "delete"],
    ("tekton.dev", "taskruns"): ["get", "list", "watch"],
    ("", "events"): ["create", "patch"],
    ("", "configmaps"): ["get", "list", "watch"],
}
SECRETS_RULE: Rules = {("", "secrets"): ["get"]}
# kopf's resource observer (cluster-wide mode only): it notices CRDs installed or upgraded.
CRD_RULE: Rules = {("apiextensions.k8s.io", "customresourcedefinitions"): ["get", "list", "watch"]}
SERVING_VERBS = ["get", "list", "watch", "create", "patch"]
RUN_RULES: Rules = {
    ("serving.kserve.io", "inferenceservices"): SERVING_VERBS,
    ("mlops.seldon.io", "models"): SERVING_VERBS,
    ("machinelearning.seldon.io", "seldondeployments"): SERVING_VERBS,
}
RBAC_KINDS = ("Role", "ClusterRole")


def flatten(role: Manifest) -> Rules:
    """One entry per (apiGroup, resource); a resource granted twice would be a review trap."""
    rules: Rules = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in rules, (
                    f"{resource} granted twice in {role['metadata']['name']}"
                )
                rules[(group, resource)] = list(rule["verbs"])
    return rules


def roles(objects: list[Manifest], component: str) -> list[Manifest]:
    return [
        obj
        for obj in objects
        if obj["kind"] in RBAC_KINDS and obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]


def operator_account(objects: list[Manifest]) -> tuple[str, str]:
    deployment = one(objects, "Deployment")
    return deployment["spec"]["template"]["spec"]["serviceAccountName"], deployment["metadata"]["namespace"]


def bound_subjects(objects: list[Manifest], role: Manifest) -> list[tuple[str, str, str]]:
    binding_kind = "RoleBinding" if role["kind"] == "Role" else "ClusterRoleBinding"
    bindings = [
        b
        for b in by_kind(objects, binding_kind)
        if b["roleRef"]
        == {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"], "name": role["metadata"]["name"]}
        and b["metadata"].get("namespace") == role["metadata"].get("namespace")
    ]
    assert len(bindings) == 1, f"{role['kind']} {role['metadata']['name']} is bound {len(bindings)} times"
    return [(s["kind"], s["name"], s["namespace"]) for s in bindings[0]["subjects"]]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_wildcards_anywhere(render: Render, scenario: str) -> None:
    for role in (o for o in render(*SCENARIOS[scenario]) if o["kind"] in RBAC_KINDS):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert not any("*" in item for item in rule[field]), (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule
        assert "aggregationRule" not in role


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_secrets_are_only_read_by_name_in_watched_namespaces(render: Render, scenario: str) -> None:
    objects = render(*SCENARIOS[scenario])
    for role in (o for o in objects if o["kind"] in RBAC_KINDS):
        secrets = flatten(role).get(("", "secrets"))
        if role["kind"] == "ClusterRole":
            assert secrets is None, "a ClusterRole must never grant Secrets"
        elif secrets is not None:
            assert secrets == ["get"]  # no list or watch: only a Secret a Codeset names


@pytest.mark.parametrize("scenario", ["default", "namespaced", "ingress"])
def test_namespaced_mode_grants_exactly_the_operator_rules_per_namespace(
    render: Render, scenario: str
) -> None:
    objects = render(*SCENARIOS[scenario])
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    expected_namespaces = (
        ["team-vision", "team-forecast"] if scenario == "namespaced" else [RELEASE_NAMESPACE]
    )
    operator_roles = roles(objects, "operator")
    assert [r["metadata"]["namespace"] for r in operator_roles] == expected_namespaces
    account = operator_account(objects)
    for role in operator_roles:
        assert flatten(role) == OPERATOR_RULES | SECRETS_RULE
        assert bound_subjects(objects, role) == [("ServiceAccount", *account)]


def test_clusterwide_mode_keeps_secrets_namespaced(render: Render) -> None:
    objects = render("clusterwide.yaml")
    account = operator_account(objects)
    [cluster_role] = by_kind(objects, "ClusterRole")
    assert flatten(cluster_role) == OPERATOR_RULES | CRD_RULE
    assert bound_subjects(objects, cluster_role) == [("ServiceAccount", *account)]
    operator_roles = roles(objects, "operator")
    operator_roles = [r for r in operator_roles if r["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in operator_roles] == ["team-vision", "team-forecast"]
    for role in operator_roles:
        assert flatten(role) == SECRETS_RULE
        assert bound_subjects(objects, role) == [("ServiceAccount", *account)]


def test_clusterwide_names_do_not_collide_between_releases(render: Render) -> None:
    a = one(render("clusterwide.yaml", namespace="ops-a"), "ClusterRole")["metadata"]["name"]
    b = one(render("clusterwide.yaml", namespace="ops-b"), "ClusterRole")["metadata"]["name"]
    assert a != b


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("default", RUN_RULES),
        ("clusterwide", RUN_RULES),
        ("namespaced", {("serving.kserve.io", "inferenceservices"): SERVING_VERBS}),
    ],
)
def test_run_service_account_may_only_manage_serving_resources(
    render: Render, scenario: str, expected: Rules
) -> None:
    objects = render(*SCENARIOS[scenario])
    run_roles = roles(objects, "run")
    assert run_roles and all(r["kind"] == "Role" for r in run_roles)
    for role in run_roles:
        namespace = role["metadata"]["namespace"]
        assert flatten(role) == expected
        # Bound to the run ServiceAccount of its own namespace, never to the operator.
        assert bound_subjects(objects, role) == [("ServiceAccount", "sluice-run", namespace)]
    accounts = {
        sa["metadata"]["namespace"]
        for sa in by_kind(objects, "ServiceAccount")
        if sa["metadata"]["name"] == "sluice-run"
    }
    assert accounts == {r["metadata"]["namespace"] for r in run_roles}


def test_run_service_account_without_deploy_targets_gets_no_role(render: Render) -> None:
    objects = render(set_=["runServiceAccount.deployTargets=null"])
    assert not roles(objects, "run")
    assert [sa["metadata"]["name"] for sa in by_kind(objects, "ServiceAccount")] == [
        "sluice-run",
        "sluice-step",
        "sluice",
    ]


def test_run_service_account_pulls_with_the_listed_secrets(render: Render) -> None:
    objects = render(set_=["runServiceAccount.imagePullSecrets={registry-creds}"])
    for name in ("sluice-run", "sluice-step"):  # every task pod pulls the stages image
        account: dict[str, Any] = next(
            sa for sa in by_kind(objects, "ServiceAccount") if sa["metadata"]["name"] == name
        )
        assert account["imagePullSecrets"] == [{"name": "registry-creds"}]


@pytest.mark.parametrize("scenario", ["default", "namespaced", "clusterwide"])
def test_step_service_account_has_no_rights_and_no_token(render: Render, scenario: str) -> None:
    """Every task but deploy runs as it: nothing binds it, and its pods get no token."""
    objects = render(*SCENARIOS[scenario])
    steps = [sa for sa in by_kind(objects, "ServiceAccount") if sa["metadata"]["name"] == "sluice-step"]
    assert steps and all(sa["automountServiceAccountToken"] is False for sa in steps)
    deployers = {
        sa["metadata"]["namespace"]
        for sa in by_kind(objects, "ServiceAccount")
        if sa["metadata"]["name"] == "sluice-run"
    }
    assert {sa["metadata"]["namespace"] for sa in steps} == deployers
    for binding in by_kind(objects, "RoleBinding") + by_kind(objects, "ClusterRoleBinding"):
        assert all(s["name"] != "sluice-step" for s in binding["subjects"]), binding["metadata"]["name"]


def test_step_and_deployer_accounts_must_differ(run_helm: Any) -> None:
    from tests.helm.conftest import CHART

    result = run_helm("template", "x", str(CHART), "--set", "stepServiceAccount.name=sluice-run")
    assert result.returncode != 0 and "must differ" in result.stderr


def test_compiled_runs_name_the_charts_service_accounts() -> None:
    """The compiler's defaults are the chart's defaults, so `sluice compile` output runs as installed."""
    import yaml

    from controller import settings
    from tests.helm.conftest import CHART

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["stepServiceAccount"]["name"] == settings.DEFAULT_STEP_SERVICE_ACCOUNT
    assert values["runServiceAccount"]["name"] == settings.DEFAULT_DEPLOYER_SERVICE_ACCOUNT


def test_the_install_guides_rbac_table_is_the_charts() -> None:
    """docs/install.md's "Exactly what the operator may do" lists exactly OPERATOR_RULES + Secrets."""
    import re

    from tests.helm.conftest import REPO

    text = (REPO / "docs" / "install.md").read_text()
    section = text.split("### Exactly what the operator may do", 1)[1].split("\n\n", 3)[2]
    documented: Rules = {}
    for line in section.splitlines()[2:]:
        group, resources, verbs = (cell.strip() for cell in line.strip("|").split("|")[:3])
        group = "" if group == "core" else group.strip("`")
        names = re.findall(r"`([^`]+)`", resources)
        if names and names[0] == "*/status":  # "`*/status` of the three"
            names = [f"{r}/status" for r in ("workflows", "codesets", "workflowruns")]
        for name in names:
            documented[(group, name)] = [v.strip() for v in verbs.split(",")]
    assert documented == {**OPERATOR_RULES, **SECRETS_RULE}
