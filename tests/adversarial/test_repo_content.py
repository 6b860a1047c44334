"""Hostile repository content: symlinks to host files, `sync.path` escapes, a 200 MB file, 100 000
files, `file://` submodules. Through the operator's GitOps sync (reading a real fetched commit),
the clone stage a task pod runs, and `sluice run` with a local codeset folder.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adversarial.conftest import REPO, Sandbox, run_sluice
from tests.adversarial.gitrepos import fast_import_repo, sparse_file_repo

sync = pytest.importorskip(
    "controller.operator.codesets.sync", reason="the operator's codeset sync module is not importable"
)
from controller.operator.codesets.git import Git  # noqa: E402
from controller.operator.codesets.snapshots import Snapshots  # noqa: E402
from controller.operator.codesets.spec import GitRef, InvalidCodeset, Source, parse_codeset  # noqa: E402

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
VALID = b"""apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {name: fine}
spec:
  steps: [{name: a, image: busybox, script: echo hi}]
"""


@pytest.fixture(autouse=True)
def local_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")  # the repositories are local folders


def codeset_spec(url: str, sync_path: str = "wf") -> object:
    body = {
        "metadata": {"name": "evil", "namespace": "ml", "uid": "u1"},
        "spec": {"url": url, "ref": {"branch": "main"}, "sync": {"path": sync_path}},
    }
    return parse_codeset(body)


async def _none(source: Source) -> None:
    return None


def synced(repo: Path, sha: str, sync_path: str = "wf") -> tuple[list[str], list[str], set[str], float]:
    """Fetch `sha` the way the operator does and read its workflow files: (names, errors, failed, s)."""

    async def go() -> tuple[list[str], list[str], set[str]]:
        url = f"file://{repo}"
        snapshots = Snapshots(Git(), _none)
        try:
            async with snapshots.open(Source(url, GitRef("branch", "main")), sha) as snapshot:
                desired, errors, failed = await sync.desired_workflows(snapshot, codeset_spec(url, sync_path))
        finally:
            await snapshots.close()
        return [d.name for d in desired], errors, failed

    started = time.monotonic()
    names, errors, failed = asyncio.run(go())
    return names, errors, failed, time.monotonic() - started


@pytest.mark.parametrize(
    ("case", "target"),
    [
        ("etc-passwd", "/etc/passwd"),
        ("service-account-token", SA_TOKEN),
        ("relative-escape", "../../../../../../etc/passwd"),
        ("proc-self-environ", "/proc/self/environ"),
    ],
)
def test_sync_refuses_symlinked_workflow_leaving_the_repo(tmp_path: Path, case: str, target: str) -> None:
    sha = fast_import_repo(
        tmp_path / "repo", [("120000", "wf/evil.yaml", target.encode()), ("100644", "wf/fine.yaml", VALID)]
    )
    names, errors, failed, _ = synced(tmp_path / "repo", sha)
    assert names == ["fine"], "the other files still sync"
    assert errors == ["wf/evil.yaml: refused: symlink leads outside the repository"]
    assert failed == {"wf/evil.yaml"}
    assert "root:" not in "".join(errors)


def test_sync_survives_a_symlink_loop(tmp_path: Path) -> None:
    sha = fast_import_repo(
        tmp_path / "repo",
        [
            ("120000", "wf/a.yaml", b"b.yaml"),
            ("120000", "wf/b.yaml", b"a.yaml"),
            ("100644", "wf/fine.yaml", VALID),
        ],
    )
    names, errors, failed, seconds = synced(tmp_path / "repo", sha)
    assert names == ["fine"] and failed == {"wf/a.yaml", "wf/b.yaml"} and seconds < 10
    assert all("refused" in e for e in errors)


@pytest.mark.parametrize("path", ["../..", "/etc", "wf/../../..", "/", "..", "wf\\..\\..", "wf\x00"])
def test_sync_path_outside_the_repository_is_refused(path: str) -> None:
    with pytest.raises(InvalidCodeset) as refused:
        codeset_spec("https://github.com/o/r.git", path)
    assert refused.value.path == "$.spec.sync.path"


def test_sync_refuses_a_200_mb_workflow_without_reading_it(tmp_path: Path) -> None:
    sha = sparse_file_repo(
        tmp_path / "repo", "wf/huge.yaml", 200 * 1024 * 1024, {"wf/fine.yaml": VALID.decode()}
    )
    names, errors, failed, _ = synced(tmp_path / "repo", sha)
    assert names == ["fine"] and failed == {"wf/huge.yaml"}
    assert errors == ["wf/huge.yaml: refused: larger than 1048576 bytes"]


def test_sync_of_100000_files_stays_fast(tmp_path: Path) -> None:
    entries = [("100644", f"data/d{i // 500:03d}/f{i:06d}.txt", b"x") for i in range(100_000)]
    sha = fast_import_repo(tmp_path / "repo", [*entries, ("100644", "wf/fine.yaml", VALID)])
    names, errors, _, seconds = synced(tmp_path / "repo", sha)
    assert names == ["fine"] and errors == []
    assert seconds < 15, f"{seconds:.1f}s to read a 100 000-file commit"


def test_sync_caps_the_number_of_workflow_files(tmp_path: Path) -> None:
    """20 000 broken workflow files: at most MAX_WORKFLOW_FILES are read, each a one-line error."""
    entries = [("100644", f"wf/d{i // 500:02d}/w{i:05d}.yaml", b"spec: [") for i in range(20_000)]
    sha = fast_import_repo(tmp_path / "repo", entries)
    names, errors, failed, seconds = synced(tmp_path / "repo", sha)
    assert names == [] and len(failed) == len(errors) == sync.MAX_WORKFLOW_FILES
    assert all("YAML syntax error" in e and "\n" not in e for e in errors)
    assert seconds < 20


def test_sync_ignores_file_submodules(tmp_path: Path) -> None:
    secret = tmp_path / "secret-repo"
    secret_sha = fast_import_repo(secret, [("100644", "wf/stolen.yaml", VALID.replace(b"fine", b"stolen"))])
    gitmodules = f'[submodule "wf/sub"]\n\tpath = wf/sub\n\turl = file://{secret}\n'.encode()
    sha = fast_import_repo(
        tmp_path / "repo",
        [
            ("100644", ".gitmodules", gitmodules),
            ("160000", "wf/sub", secret_sha.encode()),
            ("100644", "wf/fine.yaml", VALID),
        ],
    )
    names, errors, _, _ = synced(tmp_path / "repo", sha)
    assert names == ["fine"] and errors == [], "the submodule's workflows are never fetched"


# --- the clone stage: what a task pod runs ---------------------------------------------------------


def clone(sandbox: Sandbox, url: str, revision: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    dest = sandbox.home / "runs" / "r" / "src"
    done = subprocess.run(
        [sys.executable, "-m", "stages.clone", f"--url={url}", f"--revision={revision}", f"--dest={dest}"],
        cwd=sandbox.work,
        env=sandbox.env({"SLUICE_ALLOW_LOCAL_GIT": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, dest


def test_clone_stage_never_fetches_file_submodules(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret-repo"
    secret_sha = fast_import_repo(secret, [("100644", "private.txt", b"top secret")])
    gitmodules = f'[submodule "sub"]\n\tpath = sub\n\turl = file://{secret}\n'.encode()
    sha = fast_import_repo(
        tmp_path / "repo",
        [
            ("100644", ".gitmodules", gitmodules),
            ("160000", "sub", secret_sha.encode()),
            ("100644", "a.txt", b"a"),
        ],
    )
    done, dest = clone(sandbox, f"file://{tmp_path / 'repo'}", sha)
    assert done.returncode == 0, done.stderr
    assert (dest / "a.txt").read_text() == "a"
    assert not (dest / "sub" / "private.txt").exists()
    assert not any((dest / "sub").iterdir()) if (dest / "sub").exists() else True
    sandbox.assert_untouched()


def test_clone_stage_keeps_symlinks_as_links_inside_the_checkout(sandbox: Sandbox, tmp_path: Path) -> None:
    """git writes a symlink as a symlink: nothing of the host file is copied into the checkout."""
    sha = fast_import_repo(
        tmp_path / "repo", [("120000", "wf.yaml", b"/etc/passwd"), ("100644", "a.txt", b"a")]
    )
    done, dest = clone(sandbox, f"file://{tmp_path / 'repo'}", sha)
    assert done.returncode == 0, done.stderr
    assert (dest / "wf.yaml").is_symlink() and os.readlink(dest / "wf.yaml") == "/etc/passwd"
    assert "root:" not in done.stdout + done.stderr


def test_clone_stage_checks_out_a_200_mb_file(sandbox: Sandbox, tmp_path: Path) -> None:
    sha = sparse_file_repo(tmp_path / "repo", "huge.bin", 200 * 1024 * 1024, {"a.txt": "a"})
    done, dest = clone(sandbox, f"file://{tmp_path / 'repo'}", sha)
    assert done.returncode == 0, done.stderr
    assert (dest / "huge.bin").stat().st_size == 200 * 1024 * 1024


# --- `sluice run` with a hostile local codeset folder ----------------------------------------------


def test_local_run_with_100000_files_and_a_200_mb_file(sandbox: Sandbox) -> None:
    folder = sandbox.root / "inputs" / "src"
    folder.mkdir()
    (folder / "message.txt").write_text("hello")
    with open(folder / "huge.bin", "wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    for d in range(200):
        sub = folder / f"d{d:03d}"
        sub.mkdir()
        for i in range(500):
            (sub / f"f{i}.txt").write_bytes(b"x")
    (folder / "passwd").symlink_to("/etc/passwd")
    workflow = REPO / "tests" / "local" / "fixtures" / "codeset-wf.yaml"
    outcome = run_sluice(sandbox, "run", str(workflow), "--codeset", f"src={folder}", "--json", timeout=120)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert '"message": "hello"' in outcome.stdout
    assert "root:" not in outcome.stdout + outcome.stderr
    assert outcome.cpu_seconds < 15, f"{outcome.cpu_seconds:.1f}s of CPU"
    # the folder is read in place: the run folder holds a link, not a copy of 100 000 files
    runs = list((sandbox.home / "runs").iterdir())
    assert len(runs) == 1 and sum(1 for _ in runs[0].rglob("*")) < 200
    assert (folder / "passwd").is_symlink(), "the user's folder is left as it was"
