"""IBM's tekton-lint (npm `@ibm/tekton-lint`), installed on first use into .tools/node (gitignored).

tekton-lint applies most of its rules (undefined/missing/extra params, undefined results,
missing workspaces, task cycles) to `Pipeline` and `Task` documents only, not to a
PipelineRun's embedded specs. So `lint_pipelinerun` lints the PipelineRun together with its
exact expansion: the embedded pipelineSpec as a `Pipeline` whose tasks reference each
embedded taskSpec as a `Task` of its own. The expansion changes no field, only where it lives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[2]
NODE_PREFIX = Path(os.environ.get("SLUICE_NODE_TOOLS", str(PROJECT / ".tools" / "node")))
BINARY = NODE_PREFIX / "node_modules" / ".bin" / "tekton-lint"
PACKAGE = "@ibm/tekton-lint"


def ensure_installed() -> Path:
    """Install tekton-lint with npm when it is not there yet; return the binary."""
    if BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install tekton-lint")
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_PREFIX), PACKAGE],
        check=True,
        capture_output=True,
        timeout=300,
    )
    if not BINARY.exists():
        raise RuntimeError(f"npm install {PACKAGE} did not produce {BINARY}")
    return BINARY


def expand(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The PipelineRun, its pipelineSpec as a Pipeline, and each embedded taskSpec as a Task."""
    name = run["metadata"]["name"]
    spec = run["spec"]["pipelineSpec"]
    docs: list[dict[str, Any]] = [run]
    pipeline_spec = {k: v for k, v in spec.items() if k not in ("tasks", "finally")}
    for section in ("tasks", "finally"):
        tasks = []
        for task in spec.get(section) or []:
            task_name = f"{name}-{task['name']}"
            body = {k: v for k, v in task["taskSpec"].items() if k != "metadata"}
            docs.append(
                {
                    "apiVersion": "tekton.dev/v1",
                    "kind": "Task",
                    "metadata": {
                        "name": task_name,
                        "labels": task["taskSpec"].get("metadata", {}).get("labels", {}),
                    },
                    "spec": body,
                }
            )
            ref = {k: v for k, v in task.items() if k != "taskSpec"}
            ref["taskRef"] = {"name": task_name}
            tasks.append(ref)
        pipeline_spec[section] = tasks
    docs.insert(
        1,
        {
            "apiVersion": "tekton.dev/v1",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": pipeline_spec,
        },
    )
    return docs


def lint(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tekton-lint's problems (errors and warnings) for a set of documents."""
    binary = ensure_installed()
    with tempfile.TemporaryDirectory(prefix="tekton-lint-") as folder:
        path = Path(folder) / "resources.yaml"
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
        result = subprocess.run(
            [str(binary), "--format", "json", "--config", folder, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=folder,
        )
    if result.returncode not in (0, 1) or not result.stdout.strip().startswith("["):
        raise RuntimeError(f"tekton-lint failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def lint_pipelinerun(run: dict[str, Any]) -> list[dict[str, Any]]:
    return lint(expand(run))


def errors_only(problems: list[dict[str, Any]]) -> list[str]:
    return [f"{p.get('rule')}: {p.get('message')}" for p in problems if p.get("level") == "error"]
