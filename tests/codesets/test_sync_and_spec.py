"""Reading workflow files from a fetched commit, and Codeset spec validation."""

from __future__ import annotations

import pytest

from controller import settings
from controller.operator.codesets.git import Git
from controller.operator.codesets.snapshots import Snapshots
from controller.operator.codesets.spec import GitRef, InvalidCodeset, Source, parse_codeset
from controller.operator.codesets.sync import desired_workflows, merge_diff
from tests.codesets.test_gitops import workflow_yaml
from testsupport.gitserver import GitDaemon, Repo


def body(url: str, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": "project", "namespace": "ml", "uid": "u1"}, "spec": {"url": url, **spec}}


async def no_credentials(source: Source) -> None:
    return None


async def test_symlinks_inside_followed_outside_refused_big_files_refused(
    repo: Repo, daemon: GitDaemon
) -> None:
    repo.commit(
        {
            "common/real.yaml": workflow_yaml("linked"),
            "wf/big.yaml": "#" * (settings.MAX_FILE_BYTES + 10),
            "wf/ignored.yaml": workflow_yaml("ignored"),
            "wf/dup.yaml": workflow_yaml("linked"),
        }
    )
    repo.symlink("wf/link.yaml", "../common/real.yaml")
    sha = repo.symlink("wf/escape.yml", "../../outside.yaml")
    spec = parse_codeset(
        body(daemon.url(repo), ref={"branch": "main"}, sync={"path": "./wf/"}, ignore=["ignored.*"])
    )
    assert spec.sync_path == "wf"
    snapshots = Snapshots(Git(), no_credentials)
    try:
        async with snapshots.open(Source(daemon.url(repo), GitRef("branch", "main")), sha) as snapshot:
            desired, errors, failed = await desired_workflows(snapshot, spec)
            ignored_digest = snapshot.digest(["*.yaml", "*.yml"])
            assert ignored_digest != snapshot.digest([])
    finally:
        await snapshots.close()
    assert [(d.file, d.name) for d in desired] == [("wf/dup.yaml", "linked")]
    text = "\n".join(errors)
    assert "wf/big.yaml: refused: larger than" in text
    assert "wf/escape.yml: refused: symlink leads outside the repository" in text
    assert (
        "wf/link.yaml:4:" in text
        and "$.metadata.name: Workflow linked is already defined in wf/dup.yaml" in text
    )
    assert failed == {"wf/big.yaml", "wf/escape.yml", "wf/link.yaml"}


async def test_workflow_files_together_are_bounded(
    repo: Repo, daemon: GitDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.operator.codesets import sync

    first, second = workflow_yaml("first"), workflow_yaml("second")
    sha = repo.commit({"wf/a.yaml": first, "wf/b.yaml": second})
    # room for the first file only: the second is refused, never read or parsed
    monkeypatch.setattr(sync, "MAX_SYNC_BYTES", len(first.encode()) + 10)
    spec = parse_codeset(body(daemon.url(repo), ref={"branch": "main"}, sync={"path": "wf"}))
    snapshots = Snapshots(Git(), no_credentials)
    try:
        async with snapshots.open(Source(daemon.url(repo), GitRef("branch", "main")), sha) as snapshot:
            desired, errors, failed = await desired_workflows(snapshot, spec)
    finally:
        await snapshots.close()
    assert [d.name for d in desired] == ["first"]
    assert errors == [
        f"wf/b.yaml: refused: the workflow files together exceed {len(first.encode()) + 10} bytes"
    ]
    assert failed == {"wf/b.yaml"}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"url": "ext::sh -c id"}, "$.spec.url"),
        ({"url": "https://example.com/a.git", "sync": {"path": "../etc"}}, "$.spec.sync.path"),
        ({"url": "https://example.com/a.git", "sync": {"path": "/etc"}}, "$.spec.sync.path"),
        ({"url": "https://example.com/a.git", "ref": {"branch": "-x"}}, "$.spec.ref.branch"),
        ({"url": "https://example.com/a.git", "ref": {"branch": "a..b"}}, "$.spec.ref.branch"),
        ({"url": "https://example.com/a.git", "ref": {"commit": "abc1234"}}, "$.spec.ref.commit"),
        ({"url": "https://example.com/a.git", "interval": "0s"}, "$.spec.interval"),
        ({"url": "https://example.com/a.git", "webhook": {"secretRef": {}}}, "$.spec.webhook.secretRef.name"),
    ],
)
def test_invalid_codesets_are_refused_with_their_path(
    spec: dict[str, object], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT")
    with pytest.raises(InvalidCodeset) as caught:
        parse_codeset({"metadata": {"name": "x", "namespace": "ml"}, "spec": spec})
    assert caught.value.path == path


def test_codeset_defaults_and_sharing_scope() -> None:
    from controller.operator.codesets.spec import source_of

    public = parse_codeset(body("https://example.com/a.git"))
    assert public.ref == GitRef("head", "HEAD") and public.interval_seconds == 60
    private = parse_codeset(body("https://example.com/a.git", secretRef={"name": "s"}, interval="1m30s"))
    assert private.interval_seconds == 90
    assert source_of(public).namespace is None  # shared across namespaces: no credentials involved
    assert source_of(private) == Source("https://example.com/a.git", GitRef("head", "HEAD"), "ml", "s")


def test_merge_diff_removes_keys_and_replaces_lists() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    new = {"b": {"c": 2, "e": 4}, "l": [2]}
    assert merge_diff(old, new) == {"a": None, "b": {"d": None, "e": 4}, "l": [2]}
