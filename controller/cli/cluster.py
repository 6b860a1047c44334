"""The cluster in KUBECONFIG, for the command line: one client, its errors as one-line messages."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from controller.settings import API_GROUP, API_VERSION

T = TypeVar("T")
TEKTON_GROUP, TEKTON_VERSION = "tekton.dev", "v1"

# The options every command with a cluster form takes, spelled once.
ClusterOption = Annotated[
    bool, typer.Option("--cluster", help="WorkflowRuns on the cluster in KUBECONFIG instead of local runs.")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="With --cluster: the namespace [the current kubeconfig context's]."
    ),
]


AllNamespacesOption = Annotated[
    bool,
    typer.Option(
        "--all-namespaces",
        "-A",
        help="With --cluster: the runs of every namespace (--namespace is ignored, as by kubectl).",
    ),
]


def local_only(command: str, namespace: str | None, all_namespaces: bool = False) -> None:
    """A cluster-only option given without --cluster: a usage error (exit 2)."""
    given = "--namespace" if namespace is not None else "--all-namespaces" if all_namespaces else None
    if given:
        print(f"sluice {command}: {given} is for --cluster (local runs have no namespace)", file=sys.stderr)
        raise typer.Exit(2)


class ClusterError(Exception):
    """The cluster could not be reached or answered an error; the message says which, in one line."""


class NotFound(ClusterError):
    """The API server answered 404."""


class Cluster:
    """Typed calls against the API server of the current kubeconfig context."""

    def __init__(self) -> None:
        try:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException
        except ImportError:
            raise ClusterError(
                "the Kubernetes client is not installed: pip install 'sluice[cluster]'"
            ) from None
        # KUBECONFIG read now, not when the client was imported (it reads it once, at import)
        files = os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=files)
            _, active = config.list_kube_config_contexts(config_file=files)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise ClusterError(f"cannot read Kubernetes credentials: {str(exc).splitlines()[0]}") from None
        # the namespace of the current context, as kubectl uses it
        self.namespace: str = ((active or {}).get("context") or {}).get("namespace") or "default"
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()

    def call(self, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` with the client's failures as ClusterError (NotFound on 404)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            message = _status_message(exc.body)
            if exc.status == 404:
                raise NotFound(f"{what}: not found") from None
            raise ClusterError(
                f"{what}: the API server answered {exc.status} {exc.reason}{message}"
            ) from None
        except OSError as exc:  # connection refused, DNS, TLS
            raise ClusterError(f"cannot reach the API server: {exc}") from None
        except Exception as exc:  # urllib3's MaxRetryError and friends
            raise ClusterError(f"cannot reach the API server: {type(exc).__name__}") from None

    # --- Sluice's resources ------------------------------------------------------------------------

    def list_sluice(
        self, plural: str, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector} if selector else {}
        if namespace:
            answer = self.call(
                f"list {plural}",
                self.custom.list_namespaced_custom_object,
                API_GROUP,
                API_VERSION,
                namespace,
                plural,
                **kwargs,
            )
        else:
            answer = self.call(
                f"list {plural}",
                self.custom.list_cluster_custom_object,
                API_GROUP,
                API_VERSION,
                plural,
                **kwargs,
            )
        items = (answer if isinstance(answer, dict) else {}).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def get_sluice(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        answer = self.call(
            f"{plural[:-1]} {name} in namespace {namespace}",
            self.custom.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            plural,
            name,
        )
        return answer if isinstance(answer, dict) else {}

    def create_sluice(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.call(
            f"create {plural[:-1]}",
            self.custom.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            plural,
            body,
        )
        return answer if isinstance(answer, dict) else {}

    def patch_sluice(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.call(
            f"{plural[:-1]} {name}",
            self.custom.patch_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            plural,
            name,
            patch,
        )

    # --- what Tekton and the kubelet hold ----------------------------------------------------------

    def list_taskruns(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = self.call(
            "list taskruns",
            self.custom.list_namespaced_custom_object,
            TEKTON_GROUP,
            TEKTON_VERSION,
            namespace,
            "taskruns",
            label_selector=selector,
        )
        items = (answer if isinstance(answer, dict) else {}).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        pod = self.call(f"pod {name}", self.core.read_namespaced_pod, name, namespace)
        return dict(self.core.api_client.sanitize_for_serialization(pod))

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        text = self.call(
            f"log of {pod}/{container}",
            self.core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
        )
        return text if isinstance(text, str) else str(text)

    def secret_values(self, namespace: str, name: str) -> list[str]:
        """The decoded values of a Secret (to mask them in logs); [] if it cannot be read."""
        import base64

        try:
            secret = self.call(f"secret {name}", self.core.read_namespaced_secret, name, namespace)
        except ClusterError:
            return []
        values: list[str] = []
        for encoded in (getattr(secret, "data", None) or {}).values():
            try:
                values.append(base64.b64decode(encoded).decode("utf-8", errors="replace"))
            except ValueError:
                continue
        return values


def _status_message(body: Any) -> str:
    """`: message` from a Kubernetes Status body, on one line (or nothing)."""
    import json

    try:
        decoded = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    message = decoded.get("message") if isinstance(decoded, dict) else None
    return f": {' '.join(str(message).split())[:300]}" if message else ""


def list_workflows(namespace: str | None) -> list[dict[str, Any]]:
    """Workflow objects in one namespace, or in all of them."""
    items = Cluster().list_sluice("workflows", namespace)
    return sorted(
        items, key=lambda w: ((w.get("metadata") or {}).get("namespace", ""), w["metadata"]["name"])
    )
