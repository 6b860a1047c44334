"""The task cache: a key per resolved task, its results and output files content-addressed.

Key = sha256 of: the resolved task (params and taskSpec after substitution, with the run's own
folder and name replaced by placeholders so two runs of the same thing agree), the digests of
the input paths it names, the code version of the `stages.*` modules it runs, digests of the
secret values it is given, and the Python version.

Layout under `$SLUICE_HOME/cache/`: `objects/<aa>/<sha256>` (read-only file contents) and
`entries/<key>.json` (results and output trees). A restore hard-links objects into the run
(copies when linking is impossible or the file must be executable), so a rerun is fast and an
artifact can never be changed behind the cache's back.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.digests import file_sha256

CACHE_FORMAT = 1
RUN_DIR_TOKEN = "$(sluice.run-dir)"
RUN_NAME_TOKEN = "$(sluice.run)"
_REPO_ROOT = Path(__file__).resolve().parents[3]


def tree(path: Path) -> list[dict[str, Any]]:
    """The files under `path` (or `path` itself): relative path, sha256, executable bit."""
    if path.is_file():
        return [{"path": "", "sha256": file_sha256(path), "exec": os.access(path, os.X_OK)}]
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root, name)
            if full.is_file():
                rel = full.relative_to(path).as_posix()
                entries.append({"path": rel, "sha256": file_sha256(full), "exec": os.access(full, os.X_OK)})
    return entries


def tree_digest(entries: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry['path']}\0{int(entry['exec'])}\0{entry['sha256']}\n".encode())
    return digest.hexdigest()


def path_digest(path: Path) -> str:
    """The sha256 of a file or directory tree (names, contents, executable bits)."""
    return tree_digest(tree(path))


def _stage_module_files(module: str, seen: set[Path]) -> None:
    """The source file of `module` and, transitively, the `stages`/`controller` modules it imports."""
    if not module.startswith(("stages", "controller")):
        return
    base = _REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file() and candidate not in seen:
            seen.add(candidate)
            try:
                tree_ = ast.parse(candidate.read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            package = module if candidate.name == "__init__.py" else module.rpartition(".")[0]
            for node in ast.walk(tree_):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        _stage_module_files(alias.name, seen)
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        parts = package.split(".")
                        parent = ".".join(parts[: len(parts) - node.level + 1])
                        name = f"{parent}.{node.module}" if node.module else parent
                    else:
                        name = node.module or ""
                    _stage_module_files(name, seen)
                    for alias in node.names:
                        _stage_module_files(f"{name}.{alias.name}", seen)


def stage_code_version(argvs: list[list[str]]) -> str:
    """A hash of the Sluice source files the `python -m stages.X` steps of a task run ("" if none)."""
    files: set[Path] = set()
    for argv in argvs:
        for i, arg in enumerate(argv[:-1]):
            if arg == "-m" and argv[i + 1].startswith("stages."):
                _stage_module_files(argv[i + 1], files)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(_REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest() if files else ""


def normalise(obj: Any, run_dir: Path, run_name: str) -> Any:
    """Replace the run's folder and name with placeholders (in strings, recursively)."""
    if isinstance(obj, str):
        return obj.replace(str(run_dir), RUN_DIR_TOKEN).replace(run_name, RUN_NAME_TOKEN)
    if isinstance(obj, list):
        return [normalise(v, run_dir, run_name) for v in obj]
    if isinstance(obj, dict):
        return {k: normalise(v, run_dir, run_name) for k, v in obj.items()}
    return obj


def localise(text: str, run_dir: Path, run_name: str) -> str:
    return text.replace(RUN_DIR_TOKEN, str(run_dir)).replace(RUN_NAME_TOKEN, run_name)


def cache_key(resolved: Any, inputs: dict[str, str], code: str, secrets: list[str]) -> str:
    material = {
        "format": CACHE_FORMAT,
        "task": resolved,
        "inputs": inputs,
        "code": code,
        "secrets": sorted(hashlib.sha256(s.encode()).hexdigest() for s in secrets),
        "python": list(sys.version_info[:3]),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class Cache:
    def __init__(self, home: Path, holds_secret: Callable[[str], bool] | None = None):
        self.holds_secret = holds_secret  # an entry whose results hold a secret value is never stored
        self.root = home / "cache"
        self.objects = self.root / "objects"
        self.entries = self.root / "entries"

    def _object(self, sha: str) -> Path:
        return self.objects / sha[:2] / sha

    def lookup(self, key: str) -> dict[str, Any] | None:
        path = self.entries / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        present = all(self._object(f["sha256"]).is_file() for out in entry["outputs"] for f in out["files"])
        return entry if present and entry.get("format") == CACHE_FORMAT else None

    def store(
        self, key: str, results: dict[str, str], outputs: dict[str, Path], run_dir: Path, run_name: str
    ) -> None:
        """Keep `results` and the files of `outputs` (relative name -> path inside the run) under `key`;
        nothing when a result holds a secret value (`holds_secret`)."""
        if self.holds_secret is not None and any(self.holds_secret(v) for v in results.values()):
            return
        stored = []
        for path in outputs.values():
            files = tree(path)
            for entry in files:
                source = path / entry["path"] if entry["path"] else path
                target = self._object(entry["sha256"])
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                    os.close(fd)
                    shutil.copyfile(source, tmp)
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, target)
            rel = path.relative_to(run_dir).as_posix()
            stored.append(
                {"path": rel, "is_file": path.is_file(), "files": files, "sha256": tree_digest(files)}
            )
        entry = {
            "format": CACHE_FORMAT,
            "results": normalise(results, run_dir, run_name),
            "outputs": stored,
        }
        _atomic_write(self.entries / f"{key}.json", json.dumps(entry, indent=1, sort_keys=True))

    def restore(self, entry: dict[str, Any], run_dir: Path, run_name: str) -> dict[str, str]:
        """Recreate the entry's output files in `run_dir`; returns its results for this run."""
        for out in entry["outputs"]:
            base = run_dir / out["path"]
            for f in out["files"]:
                target = base if out["is_file"] else base / f["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                source = self._object(f["sha256"])
                if f["exec"]:
                    shutil.copyfile(source, target)
                    os.chmod(target, 0o755)
                    continue
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
            if not out["is_file"]:
                base.mkdir(parents=True, exist_ok=True)
        return {k: localise(v, run_dir, run_name) for k, v in entry["results"].items()}
