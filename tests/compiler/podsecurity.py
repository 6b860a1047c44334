"""Checks a Kubernetes admission would make, for compiled PipelineRuns and serving manifests.

- `restricted_violations(pod_spec)`: the Pod Security Standards' `restricted` profile (which
  includes `baseline`), written from the Kubernetes documentation
  (https://kubernetes.io/docs/concepts/security/pod-security-standards/), one message per field
  the profile would refuse. A pod spec here is what the object Sluice writes decides: Tekton's and
  KServe's injected containers are configured by the platform (docs/install.md).
- `task_pods(run)`: the pod each task of a compiled PipelineRun becomes, as far as the PipelineRun
  decides it (pod template, taskRunSpecs, steps, volumes and workspaces).
- `claims_per_task(run)`: the PersistentVolumeClaims each TaskRun would bind, modelled on Tekton's
  `ValidateOnlyOnePVCIsUsed` (a volumeClaimTemplate becomes one claim per pipeline workspace).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

# Baseline: capabilities a container may add; restricted narrows it to NET_BIND_SERVICE.
RESTRICTED_ADDABLE = {"NET_BIND_SERVICE"}
# Restricted: the only volume sources.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_RESTRICTED = {"RuntimeDefault", "Localhost"}


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(pod.get(field) or []):
            yield f"{field}[{index}]({container.get('name')})", container


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """What the `restricted` Pod Security profile refuses in this pod spec; [] when admitted."""
    problems: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"spec.{field} must be unset or false")
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("spec.securityContext.windowsOptions.hostProcess must be unset or false")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl")
    problems += _selinux("spec.securityContext", pod_context)
    problems += _apparmor("spec.securityContext", pod_context)
    if pod_context.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser must not be 0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_RESTRICTED:
        problems.append(
            f"spec.securityContext.seccompProfile.type {pod_seccomp} is not RuntimeDefault/Localhost"
        )
    for index, volume in enumerate(pod.get("volumes") or []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(
                f"spec.volumes[{index}]({volume.get('name')}): {', '.join(sorted(kinds))} not allowed"
            )
    for where, container in _containers(pod):
        context = container.get("securityContext") or {}
        at = f"spec.{where}.securityContext"
        if context.get("privileged"):
            problems.append(f"{at}.privileged must be unset or false")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{at}.windowsOptions.hostProcess must be unset or false")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"{at}.procMount must be Default")
        problems += _selinux(at, context)
        problems += _apparmor(at, context)
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"spec.{where}.ports: hostPort {port['hostPort']} not allowed")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}.allowPrivilegeEscalation must be false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{at}.capabilities.drop must include ALL")
        added = set(capabilities.get("add") or []) - RESTRICTED_ADDABLE
        if added:
            problems.append(f"{at}.capabilities.add may only hold NET_BIND_SERVICE, not {sorted(added)}")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{at}.runAsNonRoot (or the pod's) must be true")
        if context.get("runAsUser") == 0:
            problems.append(f"{at}.runAsUser must not be 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_RESTRICTED:
            problems.append(f"{at}.seccompProfile.type (or the pod's) must be RuntimeDefault or Localhost")
    return problems


def _selinux(at: str, context: Mapping[str, Any]) -> list[str]:
    options = context.get("seLinuxOptions") or {}
    problems = []
    if options.get("type", "") not in SELINUX_TYPES:
        problems.append(f"{at}.seLinuxOptions.type {options['type']} not allowed")
    for field in ("user", "role"):
        if options.get(field):
            problems.append(f"{at}.seLinuxOptions.{field} must be unset")
    return problems


def _apparmor(at: str, context: Mapping[str, Any]) -> list[str]:
    profile = (context.get("appArmorProfile") or {}).get("type")
    if profile not in (None, "RuntimeDefault", "Localhost"):
        return [f"{at}.appArmorProfile.type {profile} not allowed"]
    return []


# ---- compiled PipelineRuns ----


def _pipeline_tasks(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    pipeline = run["spec"]["pipelineSpec"]
    return [*(pipeline.get("tasks") or []), *(pipeline.get("finally") or [])]


def _run_bindings(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {w["name"]: w for w in run["spec"].get("workspaces") or []}


def claims_per_task(run: Mapping[str, Any]) -> dict[str, set[str]]:
    """Task name -> the claims its TaskRun binds (Tekton names a template's claim after the
    pipeline workspace and the run: one claim per pipeline workspace)."""
    bindings = _run_bindings(run)
    claims: dict[str, set[str]] = {}
    for task in _pipeline_tasks(run):
        found: set[str] = set()
        for binding in task.get("workspaces") or []:
            source = bindings[binding["workspace"]]
            if "volumeClaimTemplate" in source:
                found.add(f"template:{source['name']}")
            elif "persistentVolumeClaim" in source:
                found.add(source["persistentVolumeClaim"]["claimName"])
        claims[task["name"]] = found
    return claims


def service_account_of(run: Mapping[str, Any], task: str) -> tuple[str | None, bool | None]:
    """(serviceAccountName, automountServiceAccountToken) the task's pod gets from the run."""
    spec = run["spec"]
    template = spec.get("taskRunTemplate") or {}
    account = template.get("serviceAccountName")
    automount = (template.get("podTemplate") or {}).get("automountServiceAccountToken")
    for task_run in spec.get("taskRunSpecs") or []:
        if task_run["pipelineTaskName"] == task:
            account = task_run.get("serviceAccountName", account)
            own = (task_run.get("podTemplate") or {}).get("automountServiceAccountToken")
            automount = automount if own is None else own
    return account, automount


def task_pods(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Task name -> the pod spec the PipelineRun decides for it (Tekton's own init containers
    and its entrypoint plumbing aside)."""
    spec = run["spec"]
    base = (spec.get("taskRunTemplate") or {}).get("podTemplate") or {}
    bindings = _run_bindings(run)
    pods: dict[str, dict[str, Any]] = {}
    for task in _pipeline_tasks(run):
        template = copy.deepcopy(dict(base))
        for task_run in spec.get("taskRunSpecs") or []:
            if task_run["pipelineTaskName"] == task["name"]:
                template.update(task_run.get("podTemplate") or {})  # Tekton: the task's field wins
        task_spec = task["taskSpec"]
        step_template = task_spec.get("stepTemplate") or {}
        containers = []
        for step in task_spec["steps"]:
            container = {**copy.deepcopy(step_template), **copy.deepcopy(step)}
            containers.append(container)
        volumes = list(copy.deepcopy(task_spec.get("volumes") or []))
        volumes += list(template.pop("volumes", None) or [])
        for binding in task.get("workspaces") or []:
            source = bindings[binding["workspace"]]
            if "volumeClaimTemplate" in source:
                volume = {"persistentVolumeClaim": {"claimName": f"pvc-{source['name']}"}}
            else:
                volume = {k: v for k, v in source.items() if k not in ("name", "subPath")}
            volumes.append({"name": f"ws-{binding['name']}", **volume})
        pod = {**template, "containers": containers, "volumes": volumes}
        pods[task["name"]] = pod
    return pods
