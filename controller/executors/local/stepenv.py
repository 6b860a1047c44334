"""A step's environment: what its compiled task gives it, on top of what the executor starts from.

Host processes start from a scrubbed environment (`host_env`): PATH (this Python's folder first),
HOME and locale of the caller, what stages need (the repository on PYTHONPATH, unbuffered output),
the Sluice settings a stage reads at run time, and the executor's SLUICE_* variables. Nothing
else of the caller's environment reaches a step: a credential exported in the shell that runs
`sluice run` is not readable by an untrusted step. A container starts from nothing but
SLUICE_EXECUTOR (its image supplies PATH and the rest, as on Kubernetes).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from controller import tracking_spool
from controller.executors.local.secrets import LocalSecrets, SecretError

REPO_ROOT = Path(__file__).resolve().parents[3]
# Of the caller's environment a host-process step keeps only these (and LC_*): PATH, HOME, locale,
# and the Sluice settings a stage reads at run time (local Git URLs, the clone timeout).
HOST_ENV_KEPT = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "SLUICE_ALLOW_LOCAL_GIT", "SLUICE_CLONE_TIMEOUT")
CONTAINER_ENV = {"SLUICE_EXECUTOR": "local"}  # a deploy step serves locally


def host_env(
    home: Path, workflow: str, run: str, namespace: str, taskrun: str, tmpdir: Path | None
) -> dict[str, str]:
    """What a host process starts from (see the module's docstring)."""
    env = {k: v for k, v in os.environ.items() if k in HOST_ENV_KEPT or k.startswith("LC_")}
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"  # epoch lines must reach the progress display as they happen
    env.update(
        {
            "SLUICE_EXECUTOR": "local",
            "SLUICE_HOME": str(home),
            "SLUICE_WORKFLOW": workflow,
            "SLUICE_RUN": run,
            "SLUICE_NAMESPACE": namespace,
            "SLUICE_TASKRUN": taskrun,
        }
    )
    if tmpdir is not None:  # the task's volume at /tmp: a host process cannot mount, it is told instead
        env["TMPDIR"] = str(tmpdir)
    env.update(mlflow_env(home))
    spool = home / "runs" / run / tracking_spool.SPOOL_DIR
    if env.get("MLFLOW_TRACKING_URI") and spool.is_dir():  # the run's logger logs what steps spool
        env[tracking_spool.SPOOL_ENV] = str(spool)
    return env


# MLflow's non-secret settings a host step gets from the caller (docs/mlflow.md); its credential
# variables (MLFLOW_TRACKING_TOKEN, AWS_*) come, like every secret, from local secrets via `env`.
MLFLOW_KEPT = ("MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_EXPERIMENT_NAME")


def mlflow_env(home: Path) -> dict[str, str]:
    """MLFLOW_TRACKING_URI: the caller's, else, when the `mlflow` extra is installed, a store in
    the Sluice home (sqlite + local artifacts) so `mlflow ui` on it shows every local run."""
    if os.environ.get("SLUICE_MLFLOW") == "off":  # tracking off for this `sluice run`
        return {}
    env = {k: v for k, v in os.environ.items() if k in MLFLOW_KEPT and v}
    if "MLFLOW_TRACKING_URI" not in env and importlib.util.find_spec("mlflow") is not None:
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    return env


def step_env(
    base: dict[str, str],
    env_list: list[dict[str, Any]],
    secrets: LocalSecrets,
    secret_values: list[str],
    where: str,
    config_maps: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """`base` with the step's `env` (stepTemplate's first): values, secrets from local secrets
    (each value added to `secret_values`, to be redacted) and keys of the input's ConfigMaps."""
    env = dict(base)
    for i, var in enumerate(env_list):
        if "valueFrom" in var and "configMapKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["configMapKeyRef"]
            value = (config_maps or {}).get(ref["name"], {}).get(ref["key"])
            if value is None and not ref.get("optional"):
                raise SecretError(
                    f"{where}.env[{i}].valueFrom.configMapKeyRef: no ConfigMap {ref['name']!r} "
                    f"with key {ref['key']!r} in the input"
                )
            if value is None:
                env.pop(var["name"], None)
            else:
                env[var["name"]] = value
        elif "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            value = secrets.require(ref["name"], ref["key"], bool(ref.get("optional")), f"{where}.env[{i}]")
            if value is None:
                env.pop(var["name"], None)
                continue
            secret_values.append(value)
            env[var["name"]] = value
        else:
            env[var["name"]] = str(var.get("value", ""))
    return env
