"""Host-process steps (no --containers): a scrubbed environment, and one plain notice of what they can do.

A step gets what its compiled task gives it, the executor's SLUICE_* variables and PATH/HOME/locale
of the caller; a credential in the caller's shell is not among them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from testsupport.processes import run_captured

SECRET = "caller-secret-7f3a"
SCRIPT = """\
printf '%s' "${AWS_SECRET_ACCESS_KEY:-unset}" > $(results.secret.path)
printf '%s' "${SOME_TOKEN:-unset}" > $(results.token.path)
printf '%s' "$GIVEN" > $(results.given.path)
printf '%s' "$HOME" > $(results.home.path)
printf '%s' "${SLUICE_EXECUTOR:-}" > $(results.executor.path)
"""


def run_object() -> dict[str, object]:
    step = {"name": "look", "image": "busybox", "script": SCRIPT, "env": [{"name": "GIVEN", "value": "yes"}]}
    results = [{"name": n} for n in ("secret", "token", "given", "home", "executor")]
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "look"},
        "spec": {
            "pipelineSpec": {"tasks": [{"name": "look", "taskSpec": {"results": results, "steps": [step]}}]}
        },
    }


def test_a_host_step_cannot_see_the_callers_environment(tmp_path: Path) -> None:
    (tmp_path / "look.yaml").write_text(yaml.safe_dump(run_object()), encoding="utf-8")
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home"), "AWS_SECRET_ACCESS_KEY": SECRET}
    env["SOME_TOKEN"] = SECRET
    command = [sys.executable, "-m", "controller.cli.main", "run", "look.yaml", "--json"]
    done = run_captured(command, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)["steps"][0]["results"]
    assert results["secret"] == "unset" and results["token"] == "unset"
    assert results["given"] == "yes"  # what the task gives the step
    assert results["home"] == os.environ.get("HOME", "")  # PATH, HOME and locale stay
    assert results["executor"] == "local"
    notices = [line for line in done.stderr.splitlines() if "steps run on this machine" in line]
    assert len(notices) == 1, done.stderr
    assert "--containers" in notices[0]
