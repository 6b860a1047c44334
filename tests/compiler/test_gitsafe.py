"""Git URL/ref validation, credential scrubbing and the git subprocess environment. The URLs and
revisions are the shared corpus, tests/data/git_inputs.yaml; tests/adversarial/test_git_inputs.py
checks each refusal and runs a share of them end to end."""

from __future__ import annotations

import pytest

from controller.gitsafe import GitSafetyError, git_env, is_commit_sha, scrub, validate_ref, validate_url
from tests.gitinputs import ACCEPTED_REFS, ACCEPTED_URLS, REFUSED_URLS, ids


@pytest.mark.parametrize(("url", "kind", "repo", "project"), ACCEPTED_URLS)
def test_remote_urls_are_accepted(url, kind, repo, project):
    parsed = validate_url(url, allow_local=False)
    assert (parsed.kind, parsed.repo_name, parsed.project) == (kind, repo, project)


@pytest.mark.parametrize(("case", "url", "fragment"), REFUSED_URLS, ids=ids(REFUSED_URLS))
def test_the_cluster_setting_admits_only_cluster_hosts(case, url, fragment):
    """The operator's cluster setting admits cluster-internal names and nothing else of the corpus
    (the adversarial suite checks each refusal without it)."""
    url = url.replace("{marker}", "/nonexistent/PWNED")
    if fragment == "cluster-internal":
        assert validate_url(url, allow_local=False, allow_cluster=True).url == url
    else:
        with pytest.raises(GitSafetyError) as refused:
            validate_url(url, allow_local=False, allow_cluster=True)
        assert fragment in str(refused.value)


def test_local_urls_need_the_development_switch(monkeypatch):
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    assert validate_url("file:///srv/repo.git").kind == "file"
    assert validate_url("http://127.0.0.1:8080/repo.git").kind == "http"
    assert validate_url("/srv/repo.git").kind == "path"
    with pytest.raises(GitSafetyError):
        validate_url("ext::sh -c id")  # never, whatever the switch
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT")
    with pytest.raises(GitSafetyError, match="SLUICE_ALLOW_LOCAL_GIT"):
        validate_url("file:///srv/repo.git")


def test_password_is_never_echoed():
    with pytest.raises(GitSafetyError) as caught:
        validate_url("https://alice:s3cr3t-value@github.com/o/r.git")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("ref", ACCEPTED_REFS)
def test_good_refs(ref):
    assert validate_ref(ref) == ref


def test_commit_sha():
    assert is_commit_sha("0123456789abcdef0123456789abcdef01234567")
    assert not is_commit_sha("0123456789ABCDEF0123456789abcdef01234567")
    assert not is_commit_sha("main")


def test_scrub_removes_credentials():
    text = (
        "fatal: unable to access 'https://bob:pa55word@git.example.com/r.git/': 403\n"
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and glpat-abcdefghijklmnopqrstu\n"
        "Authorization: Bearer eyJhbGciOi.secret.part password=letmein"
    )
    clean = scrub(text)
    for secret in ("pa55word", "bob", "ghp_abc", "glpat-abc", "eyJhbGciOi", "letmein"):
        assert secret not in clean
    assert "https://***@git.example.com/r.git/" in clean


def test_git_env_is_locked_down():
    env = git_env(
        {"PATH": "/usr/bin", "HOME": "/home/u", "GIT_DIR": "/evil", "AWS_SECRET": "x"}, allow_local=False
    )
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert "GIT_DIR" not in env and "AWS_SECRET" not in env
    config = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert config["protocol.allow"] == "never"
    assert "protocol.ext.allow" not in config
    assert "protocol.file.allow" not in config
    assert config["submodule.recurse"] == "false"
    assert "file" in git_env({}, allow_local=True)["GIT_ALLOW_PROTOCOL"]
