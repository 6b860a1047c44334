"""Git URL/ref validation, credential scrubbing and the git subprocess environment."""

from __future__ import annotations

import pytest

from controller.gitsafe import GitSafetyError, git_env, is_commit_sha, scrub, validate_ref, validate_url


@pytest.mark.parametrize(
    "url,kind,repo,project",
    [
        ("https://github.com/fuseml/examples.git", "https", "examples", "fuseml"),
        ("ssh://git@gitlab.example.com:2222/team/models.git", "ssh", "models", "team"),
        ("git@github.com:fuseml/examples.git", "scp", "examples", "fuseml"),
        ("https://[2606:4700::1111]/o/r", "https", "r", "o"),
    ],
)
def test_remote_urls_are_accepted(url, kind, repo, project):
    parsed = validate_url(url, allow_local=False)
    assert (parsed.kind, parsed.repo_name, parsed.project) == (kind, repo, project)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "file:///srv/repo.git",
        "/srv/repo.git",
        "./repo",
        "http://github.com/o/r.git",
        "git://github.com/o/r.git",
        "https://localhost/o/r.git",
        "https://127.0.0.1/o/r.git",
        "https://127.1/o/r.git",
        "https://2130706433/o/r.git",
        "https://0x7f.0.0.1/o/r.git",
        "https://[::1]/o/r.git",
        "https://[::ffff:127.0.0.1]/o/r.git",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/o/r.git",
        "https://192.168.1.2/o/r.git",
        "https://metadata.google.internal/o/r.git",
        "git@10.1.2.3:o/r.git",
        "https://github.com/$HOME/r.git",
        "https://github.com/o/r.git?x=1",
        "https://user:pass@github.com/o/r.git",
        "https://token@github.com/o/r.git",
        "-uhttps://github.com/o/r.git",
        "https://github.com/o/r\n.git",
        "https://github.com/",
        "",
    ],
)
def test_unsafe_urls_are_refused(url):
    with pytest.raises(GitSafetyError):
        validate_url(url, allow_local=False)


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


@pytest.mark.parametrize("ref", ["main", "release/1.2", "v1.0.0", "a" * 40, "HEAD", "feature_x-2"])
def test_good_refs(ref):
    assert validate_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "-b",
        "--upload-pack=x",
        "a..b",
        "x\n",
        "x y",
        "a~1",
        "a^",
        "a:b",
        "ref.lock",
        "a/",
        "/a",
        "@",
        "a@{1}",
        "$(id)",
        "a//b",
        ".hidden",
        "",
        "x" * 300,
    ],
)
def test_bad_refs(ref):
    with pytest.raises(GitSafetyError):
        validate_ref(ref)


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
