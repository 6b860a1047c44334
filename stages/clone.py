"""stages.clone: check out one codeset at a pinned revision.

    python -m stages.clone --url URL --revision SHA_OR_REF --dest DIR
        [--credentials-dir DIR] --result commit=PATH

Shallow (depth 1), no submodules, no tags, git options ended with
`--end-of-options` so a URL or ref can never be read as an option. The URL and
ref are checked by `controller.gitsafe` first (in-cluster hosts such as
`gitea.ml.svc` only with SLUICE_ALLOW_CLUSTER_GIT_HOSTS=1, which the compiled
task sets when the operator has it; loopback and private addresses never).
Credentials come only from a mounted Secret folder (`username`+`password`, or
`token`, or `identity`+`known_hosts`), reach git through GIT_ASKPASS or GIT_SSH_COMMAND,
and never appear in argv, the environment or the output.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from controller import settings
from controller.gitsafe import GitSafetyError, git_env, is_commit_sha, scrub, validate_ref, validate_url
from stages import arguments
from stages.common import StageError, run_stage

OUTPUTS = ("commit",)
GIT_TIMEOUT_SECONDS = 540
_ASKPASS = """#!/bin/sh
# Answers git's credential prompts from the mounted Secret; never echoes anything else.
dir="$SLUICE_GIT_CREDENTIALS"
case "$1" in
  Username*)
    if [ -f "$dir/username" ]; then cat "$dir/username"; else printf '%s' x-access-token; fi ;;
  *)
    if [ -f "$dir/password" ]; then cat "$dir/password"; else cat "$dir/token"; fi ;;
esac
"""


def build_parser():  # type: ignore[no-untyped-def]
    parser = arguments.stage_parser(
        "stages.clone", "Check out a codeset at a pinned revision (shallow, no submodules)."
    )
    parser.add_argument("--url", required=True, help="repository URL (https, ssh or user@host:path)")
    parser.add_argument("--revision", required=True, help="commit SHA (or a branch or tag name)")
    parser.add_argument("--dest", required=True, type=Path, help="directory to check out into")
    parser.add_argument("--credentials-dir", type=Path, help="mounted Secret with git credentials")
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def _timeout() -> float:
    """Seconds one git command may take: `SLUICE_CLONE_TIMEOUT`, else GIT_TIMEOUT_SECONDS."""
    try:
        return float(os.environ.get("SLUICE_CLONE_TIMEOUT", GIT_TIMEOUT_SECONDS))
    except ValueError:
        return GIT_TIMEOUT_SECONDS


def _git(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    timeout = _timeout()
    try:
        # its own process group: on a timeout git's helpers (git-remote-http, ssh) are killed with
        # it, not left behind still talking to a server that trickles bytes
        process = subprocess.Popen(
            ["git", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise StageError("git is not installed") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StageError(f"git {args[0]} took longer than {timeout:g}s") from None
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if done.returncode != 0:
        lines = [line for line in scrub(done.stderr).strip().splitlines() if line.strip()]
        raise StageError(f"git {args[0]} failed: {' / '.join(lines[-3:]) or f'exit {done.returncode}'}")
    return done.stdout.strip()


def _empty_dest(dest: Path) -> None:
    """A fresh, empty checkout folder (a retried attempt may have left a partial one)."""
    if dest.is_symlink():
        raise StageError(f"--dest {dest} is a symbolic link")
    if dest.exists():
        if not dest.is_dir():
            raise StageError(f"--dest {dest} exists and is not a folder")
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    dest.mkdir(parents=True, exist_ok=True)


def _credentials(folder: Path | None, scratch: Path, allow_local: bool) -> dict[str, str]:
    """The git environment, with credentials wired from the Secret folder when one is given."""
    if folder is None:
        return git_env(allow_local=allow_local)
    if not folder.is_dir():
        raise StageError(f"--credentials-dir {folder} is not a folder")
    if (folder / "identity").is_file():
        identity = scratch / "identity"
        shutil.copyfile(folder / "identity", identity)  # ssh refuses keys readable by others
        identity.chmod(0o600)
        known_hosts = folder / "known_hosts"
        if not known_hosts.is_file():
            raise StageError("an ssh identity needs a known_hosts key in the same Secret")
        command = " ".join(
            [
                "ssh",
                "-i",
                shlex.quote(str(identity)),
                "-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes",
                "-o",
                shlex.quote(f"UserKnownHostsFile={known_hosts}"),
            ]
        )
        return git_env(allow_local=allow_local, ssh_command=command)
    if not ((folder / "password").is_file() or (folder / "token").is_file()):
        raise StageError("the credentials Secret needs username+password, token, or identity+known_hosts")
    askpass = scratch / "askpass.sh"
    askpass.write_text(_ASKPASS, encoding="utf-8")
    askpass.chmod(0o700)
    env = git_env(allow_local=allow_local, askpass=str(askpass))
    env["SLUICE_GIT_CREDENTIALS"] = str(folder)  # a path, not a secret
    return env


def clone(url: str, revision: str, dest: Path, credentials: Path | None) -> str:
    """Check out `revision` of `url` into `dest`; return the commit SHA checked out."""
    allow_local = settings.allow_local_git()
    try:
        # the operator's SLUICE_ALLOW_CLUSTER_GIT_HOSTS, which the compiler gives this step's env
        validate_url(url, allow_local=allow_local, allow_cluster=settings.allow_cluster_git_hosts())
        validate_ref(revision)
    except GitSafetyError as exc:
        raise StageError(str(exc)) from None
    _empty_dest(dest)
    with tempfile.TemporaryDirectory(prefix="sluice-clone-") as scratch:
        env = _credentials(credentials, Path(scratch), allow_local)
        _git(["init", "--quiet", "--", str(dest)], env)
        fetch = ["fetch", "--quiet", "--no-tags", "--no-recurse-submodules"]
        try:
            _git([*fetch, "--depth", "1", "--end-of-options", url, revision], env, cwd=dest)
            target = "FETCH_HEAD"
        except StageError:
            if not is_commit_sha(revision):
                raise
            # Servers that refuse a bare SHA in a shallow fetch: fetch the branches, then pick it.
            _git([*fetch, "--end-of-options", url, "+refs/heads/*:refs/remotes/origin/*"], env, cwd=dest)
            target = revision
        _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", target], env, cwd=dest)
        commit = _git(["rev-parse", "--verify", "HEAD^{commit}"], env, cwd=dest)
    if is_commit_sha(revision) and commit != revision:
        raise StageError(f"checked out {commit}, not the pinned commit {revision}")
    return commit


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def body() -> None:
        commit = clone(args.url, args.revision, args.dest, args.credentials_dir)
        for name, path in args.result:
            if name == "commit":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(commit, encoding="utf-8")
        print(f"clone: {scrub(args.url)} at {commit} into {args.dest}")
        from stages import tracking

        tracking.note_codeset(args.dest.name, commit)  # the MLflow run's sluice.codeset-commits

    run_stage("stages.clone", body)


if __name__ == "__main__":
    main(sys.argv[1:])
