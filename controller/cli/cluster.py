"""Reading Sluice resources from the cluster in KUBECONFIG, for the command line."""

from __future__ import annotations

from typing import Any

from controller.settings import API_GROUP, API_VERSION


class ClusterError(Exception):
    """The cluster could not be reached or answered an error; the message says which, in one line."""


def list_workflows(namespace: str | None) -> list[dict[str, Any]]:
    """Workflow objects in one namespace, or in all of them."""
    try:
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise ClusterError("the Kubernetes client is not installed: pip install 'sluice[cluster]'") from None

    try:
        config.load_kube_config()
    except (ConfigException, OSError) as exc:
        raise ClusterError(f"cannot read Kubernetes credentials: {str(exc).splitlines()[0]}") from None
    api = client.CustomObjectsApi()
    try:
        if namespace:
            answer = api.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "workflows")
        else:
            answer = api.list_cluster_custom_object(API_GROUP, API_VERSION, "workflows")
    except ApiException as exc:
        raise ClusterError(f"the API server answered {exc.status} {exc.reason}") from None
    except OSError as exc:  # connection refused, DNS, TLS
        raise ClusterError(f"cannot reach the API server: {exc}") from None
    except Exception as exc:  # urllib3's MaxRetryError and friends
        raise ClusterError(f"cannot reach the API server: {type(exc).__name__}") from None
    items: list[dict[str, Any]] = (answer if isinstance(answer, dict) else {}).get("items") or []
    return sorted(
        items, key=lambda w: ((w.get("metadata") or {}).get("namespace", ""), w["metadata"]["name"])
    )
