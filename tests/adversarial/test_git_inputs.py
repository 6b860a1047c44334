"""Hostile Git URLs and refs (the shared corpus, tests/data/git_inputs.yaml), refused before git
ever runs: through `controller.gitsafe`, the clone stage (`python -m stages.clone`, as a task pod
runs it), `sluice compile --codeset` and `sluice run --codeset`. And git's own guard behind ours:
even if a helper URL got through, the environment Sluice gives git allows no `ext::`/`fd::`
transport and no local protocols.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.gitsafe import GitSafetyError, git_env, validate_ref, validate_url
from tests.adversarial.conftest import REPO, Sandbox, assert_clean_failure, run_sluice
from tests.gitinputs import REFUSED_REFS, REFUSED_URLS, Refused, ids

SHA = "4f1c0a7e9b2d3c5a6e8f0b1d2c3a4e5f6a7b8c9d"


def marker_url(box: Sandbox) -> str:
    return f"ext::sh -c touch% {box.marker}"


def chosen(table: list[Refused], *wanted: str) -> list[Refused]:
    """The rows of `table` with these ids: a slower test's share of the cases."""
    rows = [row for row in table if row[0] in wanted]
    assert len(rows) == len(wanted), f"no case for some of {wanted}"
    return rows


@pytest.mark.parametrize(("case", "url", "fragment"), REFUSED_URLS, ids=ids(REFUSED_URLS))
def test_gitsafe_refuses_url(case: str, url: str, fragment: str) -> None:
    with pytest.raises(GitSafetyError) as refused:
        validate_url(url.replace("{marker}", "/nonexistent/PWNED"), allow_local=False)
    assert fragment in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(("case", "ref", "fragment"), REFUSED_REFS, ids=ids(REFUSED_REFS))
def test_gitsafe_refuses_ref(case: str, ref: str, fragment: str) -> None:
    with pytest.raises(GitSafetyError) as refused:
        validate_ref(ref.replace("{marker}", "/nonexistent/PWNED"))
    assert fragment in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://gitea.ml.svc.cluster.local/o/r.git",
        "ssh://git@gitea.ml.svc/o/r.git",
        "https://gitea:3000/o/r.git",
        "git@gitea:o/r.git",
    ],
)
def test_cluster_hosts_need_the_operators_setting(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICE_ALLOW_CLUSTER_GIT_HOSTS", raising=False)
    with pytest.raises(GitSafetyError, match="cluster-internal"):
        validate_url(url, allow_local=False)
    assert validate_url(url, allow_local=False, allow_cluster=True).url == url
    monkeypatch.setenv("SLUICE_ALLOW_CLUSTER_GIT_HOSTS", "1")
    assert validate_url(url, allow_local=False).url == url


@pytest.mark.parametrize(
    "url",
    ["https://github.com/o/r.git", "https://GitHub.com./o/r.git", "https://b\u00fccher.example/o/r.git"],
)
def test_public_hosts_stay_accepted(url: str) -> None:
    assert validate_url(url, allow_local=False, allow_cluster=False).url == url


@pytest.mark.parametrize("url", ["ext::/usr/bin/id", "fd::17", "persistent-https::x/y"])
def test_helpers_stay_refused_even_with_the_local_flag(url: str) -> None:
    with pytest.raises(GitSafetyError, match="remote helpers"):
        validate_url(url, allow_local=True)


def test_git_itself_refuses_ext_in_the_sluice_environment(sandbox: Sandbox) -> None:
    """Defence in depth: were a helper URL to slip past validation, git would not run it."""
    for allow_local in (False, True):
        done = subprocess.run(
            ["git", "ls-remote", "--", marker_url(sandbox)],
            env=git_env(allow_local=allow_local),
            capture_output=True,
            text=True,
            timeout=20,
            cwd=sandbox.work,
        )
        assert done.returncode != 0
        assert "not allowed" in done.stderr or "unsupported" in done.stderr, done.stderr
    sandbox.assert_untouched()


def clone_stage(
    box: Sandbox, url: str, revision: str, allow_local: bool = False
) -> subprocess.CompletedProcess[str]:
    dest = box.home / "runs" / "r" / "src"
    env = box.env({"SLUICE_ALLOW_LOCAL_GIT": "1"} if allow_local else None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.clone",
            f"--url={url}",
            f"--revision={revision}",
            f"--dest={dest}",
            "--result",
            f"commit={box.home / 'runs' / 'r' / 'commit'}",
        ],
        cwd=box.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


STAGE_URLS = chosen(
    REFUSED_URLS,
    "ext-helper",
    "fd-helper",
    "file-url",
    "bare-absolute-path",
    "dollar-brace-var",
    "aws-metadata",
    "loopback",
    "private-10",
    "leading-dash",
    "newline",
)


@pytest.mark.parametrize(("case", "url", "fragment"), STAGE_URLS, ids=ids(STAGE_URLS))
def test_clone_stage_refuses_url(sandbox: Sandbox, case: str, url: str, fragment: str) -> None:
    done = clone_stage(sandbox, url.replace("{marker}", str(sandbox.marker)), SHA)
    assert done.returncode == 1, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    assert not (sandbox.home / "runs" / "r" / "src").exists(), "nothing is checked out"
    sandbox.assert_untouched()


STAGE_REFS = chosen(REFUSED_REFS, "leading-dash", "upload-pack", "dot-dot", "newline", "dollar")


@pytest.mark.parametrize(("case", "ref", "fragment"), STAGE_REFS, ids=ids(STAGE_REFS))
def test_clone_stage_refuses_ref_even_with_the_local_flag(
    sandbox: Sandbox, case: str, ref: str, fragment: str
) -> None:
    repo = sandbox.root / "inputs" / "repo"
    done = clone_stage(
        sandbox, f"file://{repo}", ref.replace("{marker}", str(sandbox.marker)), allow_local=True
    )
    assert done.returncode == 1, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    sandbox.assert_untouched()


WORKFLOW = REPO / "tests" / "local" / "fixtures" / "codeset-wf.yaml"
CLI_URLS = chosen(
    REFUSED_URLS,
    "ext-no-space",
    "fd-helper",
    "file-url",
    "dollar-var",
    "aws-metadata",
    "loopback-v6",
    "private-192",
    "password-in-url",
    "oracle-metadata",
)


@pytest.mark.parametrize(("case", "url", "fragment"), CLI_URLS, ids=ids(CLI_URLS))
@pytest.mark.parametrize("command", ("compile", "run"))
def test_cli_refuses_codeset_url(sandbox: Sandbox, command: str, case: str, url: str, fragment: str) -> None:
    extra = ["--codeset-revision", f"src={SHA}"] if command == "compile" else []
    outcome = run_sluice(sandbox, command, str(WORKFLOW), "--codeset", f"src={url}", *extra)
    assert_clean_failure(outcome, fragment)
    assert "hunter2" not in outcome.stdout + outcome.stderr
    sandbox.assert_untouched()


@pytest.mark.parametrize(("case", "ref", "fragment"), STAGE_REFS, ids=ids(STAGE_REFS))
@pytest.mark.parametrize("command", ("compile", "run"))
def test_cli_refuses_codeset_ref(sandbox: Sandbox, command: str, case: str, ref: str, fragment: str) -> None:
    ref = ref.replace("{marker}", str(sandbox.marker))
    if command == "compile":
        args = ["--codeset", "src=https://github.com/o/r.git", "--codeset-revision", f"src={ref}"]
    else:
        args = ["--codeset", f"src=https://github.com/o/r.git#{ref}"]
    outcome = run_sluice(sandbox, command, str(WORKFLOW), *args)
    assert_clean_failure(outcome, fragment)
    sandbox.assert_untouched()


def test_bare_local_path_is_refused_by_compile_and_missing_path_by_run(sandbox: Sandbox) -> None:
    """`sluice run` uses an existing local folder in place (the user's own files, by design);
    the compiler never turns a local path into a cluster clone, and a path that is not a folder
    is not tried as a repository."""
    outcome = run_sluice(
        sandbox,
        "compile",
        str(WORKFLOW),
        "--codeset",
        f"src={sandbox.root}",
        "--codeset-revision",
        f"src={SHA}",
    )
    assert_clean_failure(outcome, "local paths need SLUICE_ALLOW_LOCAL_GIT=1")
    outcome = run_sluice(sandbox, "run", str(WORKFLOW), "--codeset", f"src={sandbox.root / 'nothing-here'}")
    assert_clean_failure(outcome, "is neither a folder nor a Git URL")
    sandbox.assert_untouched()


def test_environment_given_to_git_drops_the_callers_git_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GIT_* variable set around Sluice (an attacker's GIT_SSH_COMMAND, GIT_CONFIG_PARAMETERS with
    core.sshCommand or an upload-pack) never reaches git."""
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/PWNED")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.sshcommand'='touch /tmp/PWNED'")
    monkeypatch.setenv("GIT_EXEC_PATH", "/tmp")
    env = git_env()
    assert "touch" not in env["GIT_SSH_COMMAND"]
    assert "GIT_CONFIG_PARAMETERS" not in env and "GIT_EXEC_PATH" not in env
    assert env["GIT_ALLOW_PROTOCOL"] == (
        "https:ssh:http:git:file" if os.environ.get("SLUICE_ALLOW_LOCAL_GIT") == "1" else "https:ssh"
    )


def test_marker_path_is_inside_the_sandbox(sandbox: Sandbox) -> None:
    assert Path(marker_url(sandbox).split("% ", 1)[1]).parent == sandbox.root
