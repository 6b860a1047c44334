"""Settings in one place: constants, and the few environment switches read at the edges.

Nothing here reads the environment at import. The functions below (`stages_image`,
`allow_local_git`, `sluice_home`) are read once by an edge - the command line, the operator's
configuration, a stage process - and passed on as arguments: the compiler and the spec never call
them (tests/test_layering.py checks it).
"""

from __future__ import annotations

import os
from pathlib import Path

API_GROUP = "sluice.dev"
API_VERSION = "v1alpha1"
WORKFLOW_API_VERSION = f"{API_GROUP}/{API_VERSION}"

# Loader limits (issue 2)
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64

# The image built-in stages run in on a cluster; versioned, never `latest`. SLUICE_STAGES_IMAGE
# overrides it (`stages_image()`).
DEFAULT_STAGES_IMAGE = "ghcr.io/sluice-dev/sluice-stages:0.1.0"

# Defaults the compiler applies when a workflow gives none.
DEFAULT_REQUESTS = {"cpu": "250m", "memory": "512Mi"}
DEFAULT_LIMITS = {"cpu": "2", "memory": "4Gi"}
DEFAULT_ARTIFACTS_SIZE = "1Gi"
DEFAULT_SOURCE_SIZE = "1Gi"
# The ServiceAccounts compiled runs use (the Helm chart creates both in every watched namespace):
# every task runs as the first, which has no API rights and no mounted token; tasks that manage
# serving resources (sluice/deploy) run as the deployer.
DEFAULT_STEP_SERVICE_ACCOUNT = "sluice-step"
DEFAULT_DEPLOYER_SERVICE_ACCOUNT = "sluice-run"
DEFAULT_TASK_TIMEOUT_SECONDS = 3600

# Labels on everything Sluice creates.
LABEL_WORKFLOW = f"{API_GROUP}/workflow"
LABEL_RUN = f"{API_GROUP}/run"
LABEL_CODESET = f"{API_GROUP}/codeset"
LABEL_REVISION = f"{API_GROUP}/revision"


def stages_image(default: str | None = None) -> str:
    """`SLUICE_STAGES_IMAGE`, else `default` or the default stages image (read at the edges only)."""
    return os.environ.get("SLUICE_STAGES_IMAGE") or default or DEFAULT_STAGES_IMAGE


def allow_local_git() -> bool:
    """`SLUICE_ALLOW_LOCAL_GIT=1` admits file:// and loopback Git URLs (development and tests)."""
    return os.environ.get("SLUICE_ALLOW_LOCAL_GIT", "") == "1"


def allow_cluster_git_hosts() -> bool:
    """`SLUICE_ALLOW_CLUSTER_GIT_HOSTS=1` admits cluster-internal (`*.svc`, `*.internal`) and
    single-label Git hosts: a Git server inside the cluster (the chart's `git.allowClusterHosts`)."""
    return os.environ.get("SLUICE_ALLOW_CLUSTER_GIT_HOSTS", "") == "1"


DEFAULT_PROGRESS_INTERVAL = 5.0


def progress_interval() -> float:
    """`SLUICE_PROGRESS_INTERVAL`: seconds between two progress lines of a step when `sluice run`
    has no terminal (default 5); ValueError for anything but a number >= 0."""
    text = os.environ.get("SLUICE_PROGRESS_INTERVAL", "").strip()
    if not text:
        return DEFAULT_PROGRESS_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"SLUICE_PROGRESS_INTERVAL must be a number of seconds >= 0, not {text[:40]!r}")
    return value


def sluice_home() -> Path:
    """Where local runs, the cache and local endpoints live: `SLUICE_HOME`, else
    `$XDG_DATA_HOME/sluice` (`~/.local/share/sluice`), one home per user whatever the working
    folder. The XDG base directory spec ignores a relative `XDG_DATA_HOME`, and so does this."""
    explicit = os.environ.get("SLUICE_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return (base / "sluice").resolve()
