"""An in-cluster Git server (`gitea.ml.svc`): the operator's SLUICE_ALLOW_CLUSTER_GIT_HOSTS travels
to the clone step of the compiled PipelineRun, and the clone step still refuses loopback and
private addresses with it.

The compiler takes the setting as an argument (`allow_cluster_git_hosts`, read at the edges) and
gives it only to clone steps, only when enabled. The clone stage is run for real
(`python -m stages.clone`, as a task pod runs it): a name like gitea.ml.svc cannot resolve here,
so with the setting what is checked is that validation admits it and git is tried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.compiler import CodesetSource, CompileError, compile_run
from controller.spec import load_workflow
from tests.compiler.conftest import EXAMPLES, PINNED, PROJECT
from testsupport.gitserver import Repo, SmartHTTP

SETTING = "SLUICE_ALLOW_CLUSTER_GIT_HOSTS"
CLUSTER_URL = "https://gitea.ml.svc/ml/data.git"


def _compile(url: str, **arguments: Any) -> dict[str, Any]:
    workflow = load_workflow(str(EXAMPLES["codeset-script"]))
    return compile_run(workflow, run_name="r", codesets={"source": CodesetSource(url, PINNED)}, **arguments)


def _env_by_task(run: dict[str, Any]) -> dict[str, dict[str, str]]:
    spec = run["spec"]["pipelineSpec"]
    return {
        task["name"]: {
            e["name"]: e.get("value", "") for s in task["taskSpec"]["steps"] for e in s.get("env", [])
        }
        for task in spec["tasks"] + spec.get("finally", [])
    }


def test_only_the_clone_step_gets_the_setting_and_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "1")  # the compiler never reads it: the argument decides
    with pytest.raises(CompileError) as refused:
        _compile(CLUSTER_URL)
    assert [d.code for d in refused.value.diagnostics] == ["codeset.unsafe"]
    assert "cluster-internal" in refused.value.diagnostics[0].message

    run = _compile(CLUSTER_URL, allow_cluster_git_hosts=True)
    given = {task for task, env in _env_by_task(run).items() if env.get(SETTING) == "1"}
    assert given == {"clone-source"}

    public = "https://github.com/example/data.git"
    assert all(SETTING not in env for env in _env_by_task(_compile(public)).values())


def test_the_setting_never_admits_loopback_or_private_addresses() -> None:
    for url in ("https://127.0.0.1/o/r.git", "https://10.0.0.7/o/r.git", "git@192.168.1.2:o/r.git"):
        with pytest.raises(CompileError) as refused:
            _compile(url, allow_cluster_git_hosts=True)
        assert "local or private" in refused.value.diagnostics[0].message, url


def test_sluice_compile_reads_the_setting_at_the_edge() -> None:
    argv = [sys.executable, "-m", "controller.cli.main", "compile", str(EXAMPLES["codeset-script"])]
    argv += ["--codeset", f"source={CLUSTER_URL}", "--codeset-revision", f"source={PINNED}"]
    env = {k: v for k, v in os.environ.items() if k not in (SETTING, "SLUICE_ALLOW_LOCAL_GIT")}
    refused = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "cluster-internal" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    allowed = subprocess.run(
        argv, cwd=PROJECT, env={**env, SETTING: "1"}, capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0, allowed.stderr
    assert _env_by_task(yaml.safe_load(allowed.stdout))["clone-source"][SETTING] == "1"


# --- the clone stage, run for real ----------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SmartHTTP, Repo]]:
    repo = Repo(tmp_path / "served")
    repo.commit({"README.md": "hello\n"})
    server = SmartHTTP(tmp_path / "served").start()
    yield server, repo
    server.stop()


def clone_stage(tmp_path: Path, url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (SETTING, "SLUICE_ALLOW_LOCAL_GIT")}
    env.update({"PYTHONPATH": str(PROJECT), "SLUICE_CLONE_TIMEOUT": "20", **extra})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.clone",
            f"--url={url}",
            "--revision=main",
            f"--dest={tmp_path / 'src'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "url", [CLUSTER_URL, "ssh://git@gitea.ml.svc.cluster.local/ml/data.git", "git@gitea:ml/data.git"]
)
def test_clone_stage_admits_a_cluster_host_only_with_the_setting(tmp_path: Path, url: str) -> None:
    refused = clone_stage(tmp_path, url)
    assert refused.returncode == 1
    assert "cluster-internal" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "src").exists(), "nothing is checked out"

    admitted = clone_stage(tmp_path, url, **{SETTING: "1"})
    # validation passed and git was tried: the name does not resolve here, so git fails to fetch
    assert admitted.returncode == 1
    assert "cluster-internal" not in admitted.stderr and "Traceback" not in admitted.stderr
    assert "git fetch failed" in admitted.stderr, admitted.stderr


def test_clone_stage_with_the_setting_still_refuses_a_loopback_server(
    tmp_path: Path, served: tuple[SmartHTTP, Repo]
) -> None:
    server, repo = served
    for url in (
        f"https://127.0.0.1:{server.port}/{repo.name}.git",
        f"ssh://git@127.0.0.1:{server.port}/r.git",
    ):
        done = clone_stage(tmp_path, url, **{SETTING: "1"})
        assert done.returncode == 1 and "local or private" in done.stderr, done.stderr
    assert sum(server.requests.values()) == 0, "the server was never asked"
    assert not (tmp_path / "src").exists()
    # the same server is reachable: it is the address that is refused, not a dead server
    local = clone_stage(tmp_path, server.url(repo), SLUICE_ALLOW_LOCAL_GIT="1")
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "src" / "README.md").read_text() == "hello\n"
