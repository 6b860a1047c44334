"""`helm template` of the chart in the four ways platform teams install it, checked object by object."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm.conftest import CHART, RELEASE_NAMESPACE, Manifest, Render, by_kind, one

# The Kubernetes version the rendered objects are validated against (chart kubeVersion >= 1.27).
KUBERNETES_VERSION = "1.33.0"
# Objects of CRDs that are not Kubernetes' own: checked structurally by their own tests.
THIRD_PARTY_GROUPS = ("monitoring.coreos.com/",)

SCENARIOS: dict[str, tuple[str, ...]] = {
    "default": (),
    "namespaced": ("namespaced.yaml",),
    "clusterwide": ("clusterwide.yaml",),
    "ingress": ("ingress.yaml",),
}


def chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def container(objects: list[Manifest]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    return dict(pod["containers"][0])


def env_of(objects: list[Manifest]) -> dict[str, str | None]:
    return {item["name"]: item.get("value") for item in container(objects)["env"]}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_core_object_is_valid_kubernetes(render: Render, scenario: str) -> None:
    objects = render(*SCENARIOS[scenario], crds=True)
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith(THIRD_PARTY_GROUPS):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 7  # SA, Role, RoleBinding, run SA/Role/RoleBinding, Service, Deployment


def test_deployment_runs_exactly_one_operator_and_never_two(render: Render) -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # A rolling update would start the new pod before the old one stops: two kopf operators at once.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # `sluice operator` is standalone unless given --peering: never in the chart.
    assert not [a for a in container(render())["args"] if a.startswith("--peering")]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_operator_pod_is_restricted(render: Render, scenario: str) -> None:
    objects = render(*SCENARIOS[scenario])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    operator = container(objects)

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")

    ctx = operator["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}

    # The only writable place is a size-limited emptyDir at /tmp, which is also HOME for git.
    assert operator["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    assert env_of(objects)["HOME"] == "/tmp"

    resources = operator["resources"]
    for bound in ("requests", "limits"):
        assert set(resources[bound]) >= {"cpu", "memory"}, bound


def test_probes_hit_the_health_endpoints_on_a_declared_port(render: Render) -> None:
    objects = render()
    operator = container(objects)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"http-metrics": 8080, "http-webhooks": 9443}
    probes = {name: operator[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "http-metrics"}
    assert probes["startupProbe"] == {"path": "/healthz", "port": "http-metrics"}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "http-metrics"}
    # The operator is told to listen where the probes look.
    assert env_of(objects)["SLUICE_OPERATOR_METRICS_PORT"] == "8080"
    assert env_of(objects)["SLUICE_WEBHOOK_PORT"] == "9443"


def test_moving_the_ports_moves_probes_service_and_listeners_together(render: Render) -> None:
    objects = render(set_=["metrics.port=9090", "webhooks.port=8443"])
    operator = container(objects)
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {
        "http-metrics": 9090,
        "http-webhooks": 8443,
    }
    env = env_of(objects)
    assert (env["SLUICE_OPERATOR_METRICS_PORT"], env["SLUICE_WEBHOOK_PORT"]) == ("9090", "8443")
    service_ports = {
        p["name"]: (p["port"], p["targetPort"]) for p in one(objects, "Service")["spec"]["ports"]
    }
    assert service_ports == {"http-metrics": (9090, "http-metrics"), "http-webhooks": (8443, "http-webhooks")}


def test_images_default_to_the_charts_app_version(render: Render) -> None:
    version = chart_app_version()
    objects = render()
    assert container(objects)["image"] == f"ghcr.io/sluice-dev/sluice-operator:{version}"
    assert env_of(objects)["SLUICE_STAGES_IMAGE"] == f"ghcr.io/sluice-dev/sluice-stages:{version}"


def test_image_repository_tag_and_digest_come_from_values(render: Render) -> None:
    digest = "sha256:" + "ab" * 32
    objects = render(
        set_=[
            "image.repository=registry.example.com/ml/sluice-operator",
            "image.tag=0.1.1",
            "stagesImage.repository=registry.example.com/ml/sluice-stages",
            f"stagesImage.digest={digest}",
        ]
    )
    assert container(objects)["image"] == "registry.example.com/ml/sluice-operator:0.1.1"
    assert env_of(objects)["SLUICE_STAGES_IMAGE"] == f"registry.example.com/ml/sluice-stages@{digest}"


def test_default_install_watches_only_its_own_namespace(render: Render) -> None:
    objects = render()
    args = container(objects)["args"]
    assert args[0] == "operator"
    assert [a for a in args if a.startswith("--namespace")] == [f"--namespace={RELEASE_NAMESPACE}"]
    assert env_of(objects)["SLUICE_WATCH_NAMESPACES"] == RELEASE_NAMESPACE
    assert {r["metadata"]["namespace"] for r in by_kind(objects, "Role")} == {RELEASE_NAMESPACE}


def test_namespaced_install_watches_the_listed_namespaces(render: Render) -> None:
    objects = render("namespaced.yaml")
    args = container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-vision",
        "--namespace=team-forecast",
    ]
    env = env_of(objects)
    assert env["SLUICE_WATCH_NAMESPACES"] == "team-vision,team-forecast"
    assert env["SLUICE_SECRET_NAMESPACES"] == "team-vision,team-forecast"
    run_accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in by_kind(objects, "ServiceAccount")
    }
    assert run_accounts == {
        ("team-vision", "sluice-run"),
        ("team-vision", "sluice-step"),
        ("team-forecast", "sluice-run"),
        ("team-forecast", "sluice-step"),
        (RELEASE_NAMESPACE, "sluice"),
    }
    assert env["SLUICE_RUN_SERVICE_ACCOUNT"] == "sluice-run"
    assert env["SLUICE_STEP_SERVICE_ACCOUNT"] == "sluice-step"


def test_clusterwide_install_watches_all_namespaces(render: Render) -> None:
    objects = render("clusterwide.yaml")
    args = container(objects)["args"]
    # No --namespace: `sluice operator` then serves every namespace.
    assert args == ["operator"]
    env = env_of(objects)
    assert env["SLUICE_WATCH_NAMESPACES"] == ""
    assert env["SLUICE_SECRET_NAMESPACES"] == "team-vision,team-forecast"


def test_log_level_becomes_an_operator_flag(render: Render) -> None:
    assert "--debug" in container(render(set_=["operator.logLevel=debug"]))["args"]
    assert "--verbose" in container(render(set_=["operator.logLevel=verbose"]))["args"]
    assert not {"--verbose", "--debug"} & set(container(render())["args"])


def test_service_exposes_metrics_and_webhooks_to_the_operator_pod(render: Render) -> None:
    objects = render()
    service = one(objects, "Service")
    deployment = one(objects, "Deployment")
    selector = service["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["type"] == "ClusterIP"


def test_disabling_webhooks_removes_port_and_listener(render: Render) -> None:
    objects = render(set_=["webhooks.enabled=false"])
    assert [p["name"] for p in one(objects, "Service")["spec"]["ports"]] == ["http-metrics"]
    assert env_of(objects)["SLUICE_WEBHOOK_PORT"] == "-1"  # the receiver is off
    assert [p["name"] for p in container(objects)["ports"]] == ["http-metrics"]


def test_optional_objects_are_off_by_default(render: Render) -> None:
    kinds = {obj["kind"] for obj in render()}
    assert kinds == {"ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"}


def test_ingress_routes_only_hooks_to_the_webhook_port_with_tls(render: Render) -> None:
    objects = render("ingress.yaml")
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["sluice.example.com"], "secretName": "sluice-webhooks-tls"}]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "sluice.example.com"
    [path] = rule["http"]["paths"]
    # Only /hooks/: metrics and probes stay inside the cluster.
    assert (path["path"], path["pathType"]) == ("/hooks/", "Prefix")
    assert path["backend"]["service"] == {"name": "sluice", "port": {"name": "http-webhooks"}}
    assert env_of(objects)["SLUICE_WEBHOOK_BASE_URL"] == "https://sluice.example.com"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}


def test_service_monitor_scrapes_the_metrics_port_of_this_service(render: Render) -> None:
    objects = render("ingress.yaml")
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("http-metrics", "/metrics", "http")
    assert set(endpoint) == {"port", "path", "scheme", "interval", "scrapeTimeout"}


def test_network_policy_allows_egress_only_to_dns_api_server_and_git_hosts(render: Render) -> None:
    objects = render("ingress.yaml")
    policy = one(objects, "NetworkPolicy")["spec"]
    assert (
        policy["podSelector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    # Every egress rule names its destination: an empty `to` would allow the whole network.
    assert all(rule.get("to") for rule in policy["egress"])
    dns, api, *git = policy["egress"]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert api == {
        "to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
        "ports": [{"port": 6443, "protocol": "TCP"}],
    }
    assert [(r["to"], sorted(p["port"] for p in r["ports"])) for r in git] == [
        ([{"ipBlock": {"cidr": "140.82.112.0/20"}}], [22, 443]),
        ([{"ipBlock": {"cidr": "192.30.252.0/22"}}], [22, 443]),
    ]
    ingress = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert ingress == {
        "http-metrics": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "http-webhooks": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ],
    }


def test_notes_give_the_webhook_url_and_three_commands(run_helm: Any) -> None:
    done = run_helm(
        "install", "sluice", str(CHART), "--dry-run=client", "--namespace", "ml",
        "--set", "webhooks.ingress.enabled=true", "--set", "webhooks.ingress.host=sluice.example.com",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "https://sluice.example.com/hooks/ml/my-codeset" in notes
    commands = [line.strip() for line in notes.splitlines() if line.strip()[:3] in {"1. ", "2. ", "3. "}]
    assert len(commands) == 3
    assert commands[0] == "1. kubectl -n ml apply -f workflows/sum-of-two.yaml"
    assert (
        "kind" in commands[1] and "WorkflowRun" in commands[1] and "kubectl -n ml create -f -" in commands[1]
    )
    assert commands[2] == "3. kubectl -n ml get workflowruns -w"


def test_notes_without_ingress_show_the_in_cluster_url_and_port_forward(run_helm: Any) -> None:
    done = run_helm("install", "sluice", str(CHART), "--dry-run=client", "--namespace", "ml")
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "http://sluice.ml.svc:9443/hooks/<namespace>/<codeset>" in notes
    assert "kubectl -n ml port-forward svc/sluice 9443" in notes


def quantity_bytes(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def test_tmp_holds_the_largest_concurrent_git_fetches(render: Render) -> None:
    """Defaults that evict the pod whenever fetches run at their limits would be a bug."""
    objects = render()
    env = env_of(objects)
    [volume] = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    worst = int(env["SLUICE_GIT_MAX_FETCH_BYTES"] or 0) * int(env["SLUICE_CODESET_MAX_FETCHES"] or 0)
    assert worst > 0
    assert worst < quantity_bytes(volume["emptyDir"]["sizeLimit"])
