"""What a task reads and writes, for its cache key and the run's lineage.

The rule, for any task (built-in stage or user script): a path under the run's workspaces (or a
local codeset folder) that the resolved task names is an *input* if it exists before the task
runs (its digest goes into the cache key) and an *output* if it appears while the task runs
(its files go into the cache). Results whose values are such paths are outputs too.

A task is not cached (it runs every time, and its outputs are not stored) when:
- it runs `python -m stages.deploy` or registers a local endpoint while running (a live model
  server is a side effect a cache cannot restore);
- its taskSpec carries the annotation `sluice.dev/cache: "false"`;
- it names a whole workspace folder (its inputs cannot be told from other tasks' outputs);
- it changed one of its inputs, or wrote outputs outside the run folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.executors.local.cache import (
    Cache,
    cache_key,
    normalise,
    path_digest,
    stage_code_version,
    tree_digest,
)
from controller.executors.local.process import Mount
from controller.executors.local.resolve import ResolvedTask
from controller.executors.local.volumes import host_text

NO_CACHE_ANNOTATION = "sluice.dev/cache"
_PATH_CHARS = r"[^\s'\"`;,:|&<>(){}\[\]=$]*"


@dataclass(frozen=True)
class RunArea:
    """What a task's plan needs of its run: its name, its folders and the cache (not the run)."""

    name: str
    run_dir: Path
    home: Path  # $SLUICE_HOME: its endpoints/ folder tells a task that registered an endpoint
    secret_dir: Path
    extra_roots: tuple[Path, ...]  # local codeset folders, read in place
    workspace_paths: tuple[Path, ...]  # the folders the run's workspaces are bound to
    cache: Cache
    images: dict[str, str] = field(default_factory=dict)  # steps in containers: image -> id


@dataclass
class Plan:
    area: RunArea
    key: str
    cacheable: bool
    why_not: str
    inputs: dict[Path, str]  # path -> digest
    candidates: list[Path]  # named paths that did not exist yet
    endpoints_before: dict[str, float]
    secret_values: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)  # steps in containers: paths they see -> host

    def inputs_record(self) -> list[dict[str, str]]:
        return [{"path": str(p), "sha256": d} for p, d in sorted(self.inputs.items())]

    def finish(self, results: dict[str, str]) -> list[dict[str, str]]:
        """After success: the outputs' digests (lineage), stored in the cache when allowed."""
        run_dir = self.area.run_dir
        workspaces = run_dir / "workspaces"
        found = [p for p in self.candidates if p.exists()]
        by_result: dict[Path, str] = {}
        for name, value in results.items():
            path = Path(host_text(value.strip(), self.mounts))
            if path.is_absolute() and _under(path, workspaces) and path.exists() and path not in self.inputs:
                found.append(path)
                by_result[path] = name
        outputs = _outermost(found)
        record = []
        for path in outputs:
            entry = {"path": str(path), "sha256": path_digest(path)}
            inner = [r for p, r in by_result.items() if p == path]
            if inner:
                entry["result"] = inner[0]
            record.append(entry)
        for path, name in by_result.items():  # results inside a stored folder: lineage names them too
            if path not in outputs:
                record.append({"path": str(path), "sha256": path_digest(path), "result": name})
        cacheable, why = self.cacheable, self.why_not
        if cacheable and _endpoints(self.area.home) != self.endpoints_before:
            cacheable, why = False, "registered a local endpoint"
        if cacheable and any(path_digest(p) != d for p, d in self.inputs.items() if p.exists()):
            cacheable, why = False, "changed one of its inputs"
        if cacheable and any(not _under(p, run_dir) for p in outputs):
            cacheable, why = False, "wrote outside the run folder"
        if cacheable:
            named = {path.relative_to(run_dir).as_posix(): path for path in outputs}
            self.area.cache.store(self.key, results, named, run_dir, self.area.name)
        self.why_not = why
        return record


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _outermost(paths: list[Path]) -> list[Path]:
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(_under(path, k) for k in kept):
            kept.append(path)
    return kept


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, list):
        return [s for item in obj for s in _strings(item)]
    if isinstance(obj, dict):
        return [s for item in obj.values() for s in _strings(item)]
    return []


def _endpoints(home: Path) -> dict[str, float]:
    folder = home / "endpoints"
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_mtime for p in folder.glob("*.json")}


def named_paths(texts: list[str], roots: list[Path]) -> list[Path]:
    """Paths under `roots` that appear in `texts` (a trailing `/` dropped)."""
    found: list[Path] = []
    for root in roots:
        pattern = re.compile(re.escape(str(root)) + r"(?:/" + _PATH_CHARS + ")?")
        for text in texts:
            for match in pattern.finditer(text):
                path = Path(match.group(0).rstrip("/"))
                if path not in found:
                    found.append(path)
    return found


def _digest_input(path: Path) -> str:
    if path.is_dir() and (path / ".git").exists():  # a codeset: its files, not git's bookkeeping
        return tree_digest([e for e in _tree_without_git(path)])
    return path_digest(path)


def _tree_without_git(path: Path) -> list[dict[str, Any]]:
    from controller.executors.local.cache import tree

    return [e for e in tree(path) if not e["path"].startswith(".git/")]


def plan(area: RunArea, task: dict[str, Any], resolved: ResolvedTask) -> Plan:
    """Inputs, candidate outputs and the cache key of a resolved task, before it runs."""
    # Steps in containers name the paths Tekton mounts (/workspace/<name>, /tekton/results): the
    # task's mount table maps them to this machine's folders, whose contents are what counts.
    mounts = list(resolved.steps[0].mounts) if resolved.steps and resolved.steps[0].sandbox else []
    mounts = mounts or resolved.views  # host steps: a read-only workspace's view is its folder
    texts = _strings(resolved.params) + _strings(resolved.spec)
    texts = [host_text(t, mounts) for t in texts] + [str(s.cwd) for s in resolved.steps if not s.sandbox]
    roots = [area.run_dir / "workspaces", *area.extra_roots]
    roots += [path for path in area.workspace_paths if not _under(path, area.run_dir)]
    named = named_paths(texts, roots)
    whole = {p for p in resolved.workspace_paths.values()} | set(area.workspace_paths)
    whole.add(area.run_dir / "workspaces")
    cacheable, why = True, ""
    annotations = (task["taskSpec"].get("metadata") or {}).get("annotations") or {}
    argvs = [s.argv for s in resolved.steps]
    if str(annotations.get(NO_CACHE_ANNOTATION, "")).lower() == "false":
        cacheable, why = False, f"annotated {NO_CACHE_ANNOTATION}: false"
    elif any("stages.deploy" in argv for argv in argvs):
        cacheable, why = False, "deploys a model (a live server cannot come from a cache)"
    elif any(p in whole for p in named):
        cacheable, why = False, "names a whole workspace folder"
    inputs = {p: _digest_input(p) for p in named if p.exists()}
    candidates = [p for p in named if not p.exists()]
    secret_values = list(resolved.secret_values)
    for path in resolved.workspace_paths.values():
        if _under(path, area.secret_dir):
            secret_values += [f.read_text(encoding="utf-8") for f in sorted(path.glob("*")) if f.is_file()]
    content: dict[str, Any] = {
        "params": resolved.params,
        "spec": resolved.spec,
        "results": resolved.result_names,
    }
    if resolved.pod:  # its env reaches every step
        content["pod"] = resolved.pod
    if mounts:  # what ran: the images themselves; and results name container paths, not host ones
        steps = [
            *(resolved.spec.get("steps") or []),
            *(resolved.spec.get("sidecars") or []),
        ]  # a sidecar serves steps
        content["images"] = {str(s.get("image")): area.images.get(str(s.get("image")), "") for s in steps}
    material = normalise(content, area.run_dir, area.name)
    digests = {str(normalise(str(p), area.run_dir, area.name)): d for p, d in inputs.items()}
    key = cache_key(material, digests, stage_code_version(argvs), secret_values)
    return Plan(area, key, cacheable, why, inputs, candidates, _endpoints(area.home), secret_values, mounts)


def outputs_record(
    run_dir: Path, entry: dict[str, Any], results: dict[str, str], mounts: list[Mount] | None = None
) -> list[dict[str, str]]:
    """The lineage record of outputs restored from the cache."""
    record = []
    by_path = {Path(host_text(v.strip(), mounts or [])): k for k, v in results.items()}
    for out in entry["outputs"]:
        path = run_dir / out["path"]
        item = {"path": str(path), "sha256": out["sha256"]}
        if path in by_path:
            item["result"] = by_path[path]
        record.append(item)
    return record
