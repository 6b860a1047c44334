"""GitOps sync of `sync.path`: the Workflow YAMLs of a commit become Workflow objects.

Reading is done from the snapshot's object database, never from a checkout: a symlink is a blob
whose content is its target, resolved here and refused if it leaves the repository; files over the
loader's size cap are refused without being read; a `sync.path` outside the repository never gets
here (`spec.normalise_sync_path`). Every file is validated by the same loader as `sluice validate`;
a bad file becomes one diagnostic (`file:line:col: $.path: message`) and the others are still applied.

Applied Workflows carry the Codeset as owner, the labels `sluice.dev/codeset` and
`sluice.dev/revision` (the commit their content was applied from) and the annotation
`sluice.dev/source-file`. One whose file is gone from Git is pruned; one whose file is still there
but invalid is kept at its last good version.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller import settings
from controller.api.codeset import CodesetSpec
from controller.api.meta import CODESET, GROUP, VERSION, WORKFLOW, owner_reference
from controller.operator.codesets.snapshots import Snapshot
from controller.operator.kube import ApiError, KubeClient, resource_path

SOURCE_ANNOTATION = f"{GROUP}/source-file"
WORKFLOW_SUFFIXES = (".yaml", ".yml")
MAX_SYMLINK_HOPS = 8
MAX_WORKFLOW_FILES = 500
# All workflow files of one sync together: parsing costs about a second of CPU per dense MiB, and
# a commit must not be able to stall the operator (parsing also runs off the event loop).
MAX_SYNC_BYTES = 8 * 1024 * 1024


@dataclass
class Desired:
    file: str
    name: str
    document: dict[str, Any]


@dataclass
class SyncOutcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each: file:line:col: $.path: message

    @property
    def workflows(self) -> list[str]:
        return sorted(self.created + self.updated + self.unchanged)

    @property
    def result(self) -> str:
        return "partial" if self.errors else "success"


def _inside(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder + "/")


def _resolve_symlink(snapshot: Snapshot, path: str, targets: Mapping[str, bytes]) -> str | None:
    """The in-repository path a symlink chain ends at, or None if it leaves the repository."""
    current = path
    for _ in range(MAX_SYMLINK_HOPS):
        entry = snapshot.entries.get(current)
        if entry is None or not entry.is_symlink:
            return current
        target = targets.get(entry.oid, b"").decode("utf-8", "replace")
        if not target or target.startswith("/"):
            return None
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
            return None
        current = resolved
    return None


async def desired_workflows(
    snapshot: Snapshot, spec: CodesetSpec
) -> tuple[list[Desired], list[str], set[str]]:
    """(valid Workflows, one-line errors, files that exist but failed) under `sync.path`."""
    folder = spec.sync_path or ""
    tracked = {e.path for e in snapshot.tracked(spec.ignore)}
    candidates = sorted(
        (
            e
            for e in snapshot.entries.values()
            if e.path in tracked and _inside(e.path, folder) and e.path.endswith(WORKFLOW_SUFFIXES)
        ),
        key=lambda e: e.path,
    )[:MAX_WORKFLOW_FILES]
    errors: list[str] = []
    failed: set[str] = set()
    budget = MAX_SYNC_BYTES
    # symlinks are rare and tiny: read every link target once, then resolve chains in memory
    link_targets = await snapshot.read([e.oid for e in snapshot.entries.values() if e.is_symlink])
    reads: dict[str, str] = {}  # file -> blob oid
    for entry in candidates:
        real = entry.path
        if entry.is_symlink:
            resolved = _resolve_symlink(snapshot, entry.path, link_targets)
            if resolved is None:
                errors.append(f"{entry.path}: refused: symlink leads outside the repository")
                failed.add(entry.path)
                continue
            real = resolved
        target = snapshot.entries.get(real)
        if target is None or not target.is_file:
            errors.append(f"{entry.path}: refused: not a regular file in the repository")
            failed.add(entry.path)
            continue
        if target.size > settings.MAX_FILE_BYTES:
            errors.append(f"{entry.path}: refused: larger than {settings.MAX_FILE_BYTES} bytes")
            failed.add(entry.path)
            continue
        if target.size > budget:
            errors.append(f"{entry.path}: refused: the workflow files together exceed {MAX_SYNC_BYTES} bytes")
            failed.add(entry.path)
            continue
        budget -= target.size
        reads[entry.path] = target.oid
    blobs = await snapshot.read(list(reads.values()))
    desired, problems, bad = await asyncio.to_thread(_validate_files, reads, blobs, spec)
    return desired, errors + problems, failed | bad


def _validate_files(
    reads: Mapping[str, str], blobs: Mapping[str, bytes], spec: CodesetSpec
) -> tuple[list[Desired], list[str], set[str]]:
    """Parse and validate the files (in a worker thread: CPU-bound, bounded by MAX_SYNC_BYTES)."""
    from controller.spec import SpecError, validate_document
    from controller.spec.yamlload import YamlError, decode, parse_yaml

    errors: list[str] = []
    failed: set[str] = set()
    desired: list[Desired] = []
    names: dict[str, str] = {}
    for file, oid in reads.items():
        try:
            parsed = parse_yaml(decode(blobs.get(oid, b""), file), file)
            validate_document(parsed.value, file, parsed.positions)
        except YamlError as exc:
            errors.append(exc.diagnostic.format())
            failed.add(file)
            continue
        except SpecError as exc:
            errors.extend(d.format() for d in exc.diagnostics[:3])
            failed.add(file)
            continue
        document = dict(parsed.value)
        problem = _placement_problem(document, spec, names)
        if problem is not None:
            line, col = parsed.positions.get(problem[0], (0, 0))
            errors.append(f"{file}:{line}:{col}: {problem[0]}: {problem[1]}")
            failed.add(file)
            continue
        name = str(document["metadata"]["name"])
        names[name] = file
        desired.append(Desired(file, name, document))
    return desired, errors, failed


def _placement_problem(
    document: Mapping[str, Any], spec: CodesetSpec, names: Mapping[str, str]
) -> tuple[str, str] | None:
    if document.get("kind") != WORKFLOW:
        return ("$", "only native `kind: Workflow` files are synced (FuseML files run with `sluice run`)")
    meta = document.get("metadata") or {}
    if meta.get("namespace") and meta["namespace"] != spec.namespace:
        return (
            "$.metadata.namespace",
            f"a synced Workflow lives in the Codeset's namespace {spec.namespace}",
        )
    if meta.get("name") in names:
        return ("$.metadata.name", f"Workflow {meta['name']} is already defined in {names[meta['name']]}")
    return None


def _manifest(item: Desired, spec: CodesetSpec, revision: str) -> dict[str, Any]:
    meta = item.document.get("metadata") or {}
    labels = {
        **(meta.get("labels") or {}),
        settings.LABEL_WORKFLOW: item.name,  # a Workflow has no run: sluice.dev/run is its runs'
        settings.LABEL_CODESET: spec.name,
        settings.LABEL_REVISION: revision,
    }
    annotations = {**(meta.get("annotations") or {}), SOURCE_ANNOTATION: item.file}
    return {
        "apiVersion": item.document.get("apiVersion"),
        "kind": WORKFLOW,
        "metadata": {
            "name": item.name,
            "namespace": spec.namespace,
            "labels": labels,
            "annotations": annotations,
            # the Codeset manages it; deleting the Codeset need not wait for its Workflows
            "ownerReferences": [
                owner_reference(CODESET, spec.name, spec.uid, controller=True, block_owner_deletion=False)
            ],
        },
        "spec": item.document.get("spec") or {},
    }


def _managed_by(obj: Mapping[str, Any], spec: CodesetSpec) -> bool:
    meta = obj.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    labelled = (meta.get("labels") or {}).get(settings.LABEL_CODESET) == spec.name
    return labelled and any(o.get("uid") == spec.uid and o.get("kind") == CODESET for o in owners)


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: removed keys become null."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_diff(old[key], value)
    return patch


def _same_content(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    old, new = existing.get("metadata") or {}, wanted["metadata"]
    old_labels = {k: v for k, v in (old.get("labels") or {}).items() if k != settings.LABEL_REVISION}
    new_labels = {k: v for k, v in new["labels"].items() if k != settings.LABEL_REVISION}
    old_notes = old.get("annotations") or {}
    return (
        existing.get("spec") == wanted["spec"]
        and all(old_labels.get(k) == v for k, v in new_labels.items())
        and all(old_notes.get(k) == v for k, v in new["annotations"].items())
    )


async def apply_workflows(
    client: KubeClient, spec: CodesetSpec, revision: str, desired: list[Desired], failed_files: set[str]
) -> SyncOutcome:
    """Create, update and prune Workflows so the cluster matches the commit."""
    outcome = SyncOutcome()
    collection = resource_path(GROUP, VERSION, "workflows", spec.namespace)
    existing = {
        (o.get("metadata") or {}).get("name"): o
        for o in await client.list(collection, f"{settings.LABEL_CODESET}={spec.name}")
    }
    for item in desired:
        wanted = _manifest(item, spec, revision)
        current = existing.get(item.name)
        if current is None:
            current = await client.get(f"{collection}/{item.name}")
        if current is None:
            try:
                await client.create(collection, wanted)
                outcome.created.append(item.name)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                outcome.errors.append(
                    f"{item.file}: Workflow {item.name} was created by someone else meanwhile"
                )
            continue
        if not _managed_by(current, spec):
            outcome.errors.append(
                f"{item.file}: Workflow {item.name} already exists and is not managed by Codeset {spec.name}"
            )
            continue
        if _same_content(current, wanted):
            outcome.unchanged.append(item.name)
            continue
        patch = {
            "metadata": {
                "labels": wanted["metadata"]["labels"],
                "annotations": wanted["metadata"]["annotations"],
                "ownerReferences": wanted["metadata"]["ownerReferences"],
            },
            "spec": merge_diff(current.get("spec") or {}, wanted["spec"]),
        }
        await client.merge_patch(f"{collection}/{item.name}", patch)
        outcome.updated.append(item.name)
    wanted_names = {item.name for item in desired}
    for name, obj in existing.items():
        if name in wanted_names or not _managed_by(obj, spec):
            continue
        source_file = ((obj.get("metadata") or {}).get("annotations") or {}).get(SOURCE_ANNOTATION)
        if source_file in failed_files:
            outcome.unchanged.append(str(name))  # its file is broken, not removed: keep the last good one
            continue
        await client.delete(f"{collection}/{name}")
        outcome.pruned.append(str(name))
    return outcome
