"""`sluice run` end to end: load -> compile -> execute locally -> print; shared by the CLI and tests.

A file that is already a compiled `tekton.dev/v1` PipelineRun runs as it is (under a fresh
run name), which is how a PipelineRun printed by `sluice compile` can be replayed locally.

Steps run as host processes (with a scrubbed environment, and a one-line notice that they run as
this user), or with `containers` (`--containers[=podman|docker]`) in their images under their pod's
restrictions; built-in stages then default to the stages image scripts/images.sh builds.
"""

from __future__ import annotations

import asyncio
import json
import secrets as random_tokens
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import __version__, settings
from controller.executors.local.codesets import CodesetError, LocalCodeset, parse_option, resolve
from controller.executors.local.documents import is_kubernetes_input
from controller.executors.local.objects import ClusterObjects
from controller.executors.local.output import json_summary
from controller.executors.local.progress import JsonEvents, LiveProgress, PlainProgress
from controller.executors.local.runprint import print_failure, print_run
from controller.executors.local.skips import skipped_by_condition
from controller.settings import sluice_home

EXIT_CANCELLED = 130
# The stages image `--containers` runs built-in stages in when SLUICE_STAGES_IMAGE is not set.
LOCAL_STAGES_IMAGE = f"localhost/sluice-stages:{__version__}"
HOST_NOTICE = (
    "sluice run: steps run on this machine as {user}, with its files and network;"
    " --containers runs them isolated in their images"
)


class RunError(Exception):
    """Invalid input before anything ran: printed as is (one diagnostic per line), exit 1."""


@dataclass
class PreparedRun:
    pipelinerun: dict[str, Any]
    workflow: str
    codesets: dict[str, LocalCodeset] = field(default_factory=dict)
    kind: str = "PipelineRun"  # or TaskRun: Tekton input's run, reported as what it is
    objects: ClusterObjects | None = None  # Tekton input's ConfigMaps and Secrets
    taskrun_names: dict[str, str] = field(default_factory=dict)
    locate: Callable[[str], str] | None = None  # `$.path: why` -> `FILE:LINE:COL: $.path: why`


def new_run_name(workflow: str) -> str:
    """`<workflow[:36]>-<yymmdd-hhmmss>-<4 hex>`: unique per local run, sortable, a DNS label."""
    from controller.compiler.naming import dns_label

    stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime())
    return f"{dns_label(workflow, 36)}-{stamp}-{random_tokens.token_hex(2)}"


def _typed_input(workflow: Any, name: str, text: str) -> Any:
    declared = workflow.input(name)
    kind = declared.type if declared is not None else "string"
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
    except ValueError:
        from controller.spec.errors import shorten

        raise RunError(  # the value shortened: it may be anything, of any length
            f"--input {name}={shorten(text)}: input {name!r} must be "
            f"{'an' if kind == 'integer' else 'a'} {kind}"
        ) from None
    return text


def prepare_run(
    path: Path,
    inputs: list[str],
    codesets: list[str],
    extensions: Path | None,
    *,
    stages_image: str | None = None,
    allow_local_git: bool | None = None,
    containers: bool = False,
) -> PreparedRun:
    """Load and compile a workflow (or read a PipelineRun); raises RunError with the diagnostics.

    `sluice run`'s edge: the stages image and the local-Git switch not given are read from the
    environment here, once (`SLUICE_STAGES_IMAGE`, `SLUICE_ALLOW_LOCAL_GIT`), and passed to the
    compiler as arguments; so is `SLUICE_ALLOW_CLUSTER_GIT_HOSTS`, which the clone steps then get.
    """
    if path.is_dir() or is_kubernetes_input(path):
        runs = prepare_runs(path, inputs, codesets, extensions, containers=containers)
        if len(runs) > 1:
            raise RunError(f"{path}: holds {len(runs)} runs; pick one with --run NAME")
        return runs[0]
    from controller.spec import load_workflow
    from controller.spec.errors import SpecError

    try:
        workflow = load_workflow(str(path))
    except SpecError as exc:
        raise RunError("\n".join(d.format() for d in exc.diagnostics)) from None
    values: dict[str, Any] = {}
    for item in inputs:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RunError(f"--input {item!r}: expected NAME=VALUE")
        values[name] = _typed_input(workflow, name, value)
    local: dict[str, LocalCodeset] = {}
    try:
        for item in codesets:
            name, value = parse_option(item)
            local[name] = resolve(name, value)
    except CodesetError as exc:
        raise RunError(f"sluice run: {exc}") from None
    if containers and any(c.folder is not None for c in local.values()):
        raise RunError("sluice run: --codeset NAME=FOLDER cannot be used with --containers; give a Git URL")
    if stages_image is None:
        stages_image = settings.stages_image(LOCAL_STAGES_IMAGE if containers else None)
    if allow_local_git is None:
        allow_local_git = settings.allow_local_git()
    cluster_hosts = settings.allow_cluster_git_hosts()
    compiled = _compile(workflow, values, local, extensions, stages_image, (allow_local_git, cluster_hosts))
    return PreparedRun(compiled, workflow.name, local)


def prepare_runs(
    path: Path,
    inputs: list[str],
    codesets: list[str],
    extensions: Path | None,
    *,
    containers: bool = False,
    pick: str | None = None,
) -> list[PreparedRun]:
    """Every run `sluice run PATH` executes, in order: a workflow's one compiled PipelineRun, or the
    PipelineRuns and TaskRuns of Tekton input (a file or folder as `kubectl apply -f` takes it,
    references resolved; `pick` names one). Everything is checked before anything runs."""
    from controller.executors.local.documents import DocumentError
    from controller.executors.local.tekton_input import prepare_documents

    if not (path.is_dir() or is_kubernetes_input(path)):
        if pick is not None:
            raise RunError(f"{path}: --run picks a run of Tekton input; a workflow file has one")
        return [prepare_run(path, inputs, codesets, extensions, containers=containers)]
    if inputs or codesets or extensions:
        raise RunError(f"{path}: Tekton input takes no --input, --codeset or --extensions")
    try:
        runs, objects = prepare_documents(path, pick, new_run_name, sluice_home(), containers=containers)
    except DocumentError as exc:
        raise RunError(str(exc)) from None
    return [
        PreparedRun(
            run.pipelinerun,
            run.workflow,
            kind=run.kind,
            objects=objects,
            taskrun_names=run.taskrun_names,
            locate=run.provenance.locate,
        )
        for run in runs
    ]


def _compile(
    workflow: Any,
    values: dict[str, Any],
    local: dict[str, LocalCodeset],
    extensions: Path | None,
    stages_image: str,
    git_switches: tuple[bool, bool],
) -> dict[str, Any]:
    """The compiled PipelineRun; `git_switches` are (allow_local_git, allow_cluster_git_hosts)."""
    from controller.compiler import CodesetSource, compile_run
    from controller.compiler.errors import CompileError

    registry = None
    if extensions is not None:
        from controller.compiler.extensions import ExtensionError, ExtensionRegistry
        from controller.spec.extension_files import ExtensionFileError, read_extension_files

        try:
            registry = ExtensionRegistry.from_sources(read_extension_files([extensions]))
        except (ExtensionFileError, ExtensionError, OSError) as exc:
            raise RunError(f"{extensions}: {exc}") from None
    sources = {name: CodesetSource(c.url, c.revision) for name, c in local.items()}
    # a local folder is the user's own: its path is a Git URL only for this local compile
    allow_local_git, allow_cluster_git_hosts = git_switches
    allow_local = allow_local_git or any(c.folder is not None for c in local.values())
    try:
        compiled: dict[str, Any] = compile_run(
            workflow,
            inputs=values,
            codesets=sources,
            run_name=new_run_name(workflow.name),
            extensions=registry,
            stages_image=stages_image,
            allow_local_git=allow_local,
            allow_cluster_git_hosts=allow_cluster_git_hosts,
        )
    except CompileError as exc:
        raise RunError("\n".join(d.format() for d in exc.diagnostics)) from None
    return compiled


async def _execute(run: Any) -> Any:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, run.cancel)  # Ctrl-C: everything stops
    loop.add_signal_handler(signal.SIGTERM, run.cancel_as_requested)  # `sluice cancel`, `kill`
    try:
        return await run.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def detach_run(prepared: PreparedRun, home: Path) -> str | None:
    """`sluice run --detach`: record the run as Pending and fork into the background. Returns the run
    id in the calling process, None in the background one (which goes on to `execute`)."""
    from controller.executors.local.runprocess import detach
    from controller.executors.local.store import RunRecord

    meta = prepared.pipelinerun["metadata"]
    name = str(meta["name"])
    run_dir = home / "runs" / name
    if run_dir.exists():
        raise RunError(f"run folder {run_dir} already exists; a local run name is used once")
    RunRecord(name, prepared.workflow, meta.get("namespace") or "default", run_dir, start=time.time()).save()
    return name if detach(run_dir) is not None else None


def execute(
    prepared: PreparedRun,
    *,
    use_cache: bool,
    json_out: bool,
    parallel: int | None,
    home: Path | None = None,
    containers: str | None = None,
    fail_on_skip: bool = False,
    collect: list[dict[str, Any]] | None = None,
) -> int:
    """Run a prepared PipelineRun with progress on the terminal; returns the exit status.
    `containers`: None runs steps as host processes; auto | podman | docker in containers.
    `fail_on_skip`: a run where a condition skipped a step exits 1, saying which and why (CI).
    `collect`: with `json_out`, the run's JSON is appended to it instead of printed."""
    from controller.executors.local.engine import LocalRun
    from controller.executors.local.engines import EngineError, find_engine
    from controller.executors.local.tekton import UnsupportedError

    home = home or sluice_home()
    engine = None
    if containers is not None:
        try:
            engine = find_engine(containers, home / "containers")
        except EngineError as exc:
            print(f"sluice run: --containers: {exc}", file=sys.stderr)
            return 1
    folders = [c.folder for c in prepared.codesets.values() if c.folder is not None]
    try:
        run = LocalRun(
            prepared.pipelinerun,
            home,
            parallel=parallel,
            use_cache=use_cache,
            workflow=prepared.workflow,
            local_codesets={c.url: c.folder for c in prepared.codesets.values() if c.folder is not None},
            extra_roots=folders,
            engine=engine,
            objects=prepared.objects,
            taskrun_names=prepared.taskrun_names,
        )
    except UnsupportedError as exc:
        print(f"sluice run: {_located(prepared, exc)}", file=sys.stderr)
        return 1
    try:
        interval = settings.progress_interval()
    except ValueError as exc:
        print(f"sluice run: {exc}", file=sys.stderr)
        return 1
    out = sys.stderr if json_out else sys.stdout
    progress: Any = (
        JsonEvents(out, run.name, interval)
        if json_out
        else LiveProgress(run.record, out)
        if out.isatty()
        else PlainProgress(out, interval)
    )
    if engine is None:
        notice = HOST_NOTICE.format(user=_user())
        if json_out:
            progress.notice(notice)
        else:
            print(notice, file=sys.stderr, flush=True)
    run.listener = progress
    if not json_out and not isinstance(progress, LiveProgress):
        print(f"run {run.name}", file=out, flush=True)
    try:
        with progress:
            record = asyncio.run(_execute(run))
    except UnsupportedError as exc:
        print(f"sluice run: {_located(prepared, exc)}", file=sys.stderr)
        return 1
    data = record.to_json()
    if json_out:
        summary = json_summary(data, prepared.kind)
        if collect is None:
            print(json.dumps(summary, indent=2))
        else:
            collect.append(summary)
    else:
        print_run(data, sys.stdout, detail=False)
    if record.phase == "Cancelled":
        print(f"sluice run: run {record.run} cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    if record.phase != "Succeeded":
        print_failure(data, sys.stderr)
        return 1
    skipped = skipped_by_condition(data["steps"]) if fail_on_skip else ""
    if skipped:
        print(f"sluice run: --fail-on-skip: {skipped}", file=sys.stderr)
        return 1
    return 0


def execute_all(runs: list[PreparedRun], *, json_out: bool, **options: Any) -> int:
    """Each run in order (after a failed one too); 1 if any did not succeed. `--json` prints one
    object for one run, a list of them for several."""
    collect: list[dict[str, Any]] | None = [] if json_out and len(runs) > 1 else None
    codes = []
    for run in runs:
        codes.append(execute(run, json_out=json_out, collect=collect, **options))
        if codes[-1] == EXIT_CANCELLED:  # Ctrl-C stops the input, not only its current run
            break
    if collect is not None:
        print(json.dumps(collect, indent=2))
    return max(codes, default=0)


def _located(prepared: PreparedRun, exc: Exception) -> str:
    """An error about the run at the file, line and column of the document that wrote it."""
    return prepared.locate(str(exc)) if prepared.locate is not None else str(exc)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        import os

        return f"uid {os.getuid()}"
