"""What `kubectl apply -f FILE|DIR` takes, read for a local run: Tekton and core documents by kind.

A file may hold several YAML documents (`---`); a folder is read file by file (`*.yaml`, `*.yml`,
sorted by name, not recursing, as `kubectl apply -f DIR` does). Every document is parsed by the
spec's hardened loader (size, depth, no aliases, no duplicate keys) and keeps its positions, so an
error anywhere names `FILE:LINE:COL: $.json.path: message` within its own document.

Kinds are a registry (`KINDS`): each names the apiVersions it is read in. A kind that only means
something on a cluster (RBAC, a ClusterTask, a custom resource) is refused with its reason.
"""

from __future__ import annotations

import secrets as random_tokens
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.spec.errors import closest_position, shorten

TEKTON = "tekton.dev/"
# kind -> the apiVersions read locally (those Tekton's own examples use for it)
KINDS: dict[str, tuple[str, ...]] = {
    "PipelineRun": ("tekton.dev/v1",),
    "TaskRun": ("tekton.dev/v1",),
    "Pipeline": ("tekton.dev/v1", "tekton.dev/v1beta1"),
    "Task": ("tekton.dev/v1", "tekton.dev/v1beta1"),
    "StepAction": ("tekton.dev/v1beta1", "tekton.dev/v1alpha1"),
    "ConfigMap": ("v1",),
    "Secret": ("v1",),
    "PersistentVolumeClaim": ("v1",),
}
RUN_KINDS = ("PipelineRun", "TaskRun")
# kinds a cluster knows that have no local meaning, and why
REFUSED_KINDS: dict[str, str] = {
    "ClusterTask": "ClusterTask was removed in Tekton v1; use a Task",
    "ServiceAccount": "RBAC grants rights on a cluster; local steps run as you",
    "Role": "RBAC grants rights on a cluster; local steps run as you",
    "ClusterRole": "RBAC grants rights on a cluster; local steps run as you",
    "RoleBinding": "RBAC grants rights on a cluster; local steps run as you",
    "ClusterRoleBinding": "RBAC grants rights on a cluster; local steps run as you",
    "CustomRun": "a custom run needs its controller on a cluster",
}
GENERATED_SUFFIX = 5  # characters Kubernetes appends to a generateName
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' own: no vowels, no look-alikes


class DocumentError(ValueError):
    """Invalid or unsupported input documents: the message is one `FILE:LINE:COL: $.path: why` line."""


@dataclass
class Document:
    """One YAML document of the input, with the positions of its JSON paths."""

    kind: str
    name: str  # metadata.name, or the name generated from metadata.generateName
    body: dict[str, Any]
    file: str
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    label: str = ""  # how the user names it: metadata.name, or generateName for generated names

    def where(self, path: str) -> str:
        """`FILE:LINE:COL: $.path` of a JSON path in this document (its closest ancestor's position)."""
        line, col = closest_position(self.positions, path)
        return f"{self.file}:{line}:{col}: {path}"

    def error(self, path: str, message: str) -> DocumentError:
        return DocumentError(f"{self.where(path)}: {message}")


@dataclass
class Documents:
    """Every document of the input, by kind and name; runs in the order they were read."""

    runs: list[Document] = field(default_factory=list)
    by_kind: dict[str, dict[str, Document]] = field(default_factory=dict)

    def find(self, kind: str, name: str) -> Document | None:
        return self.by_kind.get(kind, {}).get(name)

    def names(self, kind: str) -> list[str]:
        return sorted(self.by_kind.get(kind, {}))

    def add(self, doc: Document) -> None:
        if doc.kind in RUN_KINDS:
            self.runs.append(doc)
            return
        known = self.by_kind.setdefault(doc.kind, {})
        if doc.name in known:
            first = known[doc.name]
            line = closest_position(first.positions, "$.metadata.name")[0]
            raise doc.error(
                "$.metadata.name", f"a second {doc.kind} {doc.name!r} (first in {first.file} line {line})"
            )
        known[doc.name] = doc


def input_files(path: Path) -> list[Path]:
    """The files `kubectl apply -f PATH` reads: the file itself, or a folder's YAML files sorted."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise DocumentError(f"{path}: no *.yaml or *.yml files in this folder")
    return files


def read_file(path: Path) -> list[Document]:
    """Every non-empty document of one file, checked for kind, apiVersion and name."""
    from controller.spec.yamlload import YamlError, decode, parse_yaml_documents, read_limited

    file = str(path)
    try:
        parsed = parse_yaml_documents(decode(read_limited(file), file), file)
    except OSError as exc:
        raise DocumentError(f"{file}: cannot read: {exc.strerror}") from None
    except YamlError as exc:
        raise DocumentError(exc.diagnostic.format()) from None
    found = []
    for item in parsed:
        for value, positions in _objects(item.value, item.positions, file):
            doc = Document("", "", {}, file, positions)
            if not isinstance(value, dict):
                raise doc.error("$", "expected a Kubernetes object (a mapping with apiVersion and kind)")
            doc.body = value
            doc.kind, doc.name, doc.label = _identify(doc)
            found.append(doc)
    return found


def _objects(
    value: Any, positions: dict[str, tuple[int, int]], file: str
) -> list[tuple[Any, dict[str, tuple[int, int]]]]:
    """A document, or the `items` of a `kind: List` (what `kubectl get -o yaml` prints), each with
    the positions of its own JSON paths."""
    if not (isinstance(value, dict) and value.get("kind") == "List" and value.get("apiVersion") == "v1"):
        return [(value, positions)]
    items = value.get("items")
    if not isinstance(items, list):
        raise Document("List", "", value, file, positions).error("$.items", "expected a list of objects")
    found = []
    for i, item in enumerate(items):
        prefix = f"$.items[{i}]"
        own = {"$" + path[len(prefix) :]: at for path, at in positions.items() if path.startswith(prefix)}
        found.append((item, {p: at for p, at in own.items() if p == "$" or p[1] in ".["}))
    return found


def _identify(doc: Document) -> tuple[str, str, str]:
    body = doc.body
    kind, api = body.get("kind"), body.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        if "steps" in body and "apiVersion" not in body:  # FuseML's workflow form has no kind
            why = "a FuseML workflow runs on its own (sluice run FILE), not among Tekton documents"
            raise doc.error("$", why)
        raise doc.error("$.kind", "every document needs a kind")
    if kind in REFUSED_KINDS:
        raise doc.error("$.kind", f"{kind} cannot run locally: {REFUSED_KINDS[kind]}")
    if kind not in KINDS:
        if isinstance(api, str) and api.startswith("sluice.dev/"):
            why = "a Sluice workflow runs on its own (sluice run FILE), not among Tekton documents"
        elif isinstance(api, str) and not api.startswith(TEKTON) and "/" in api:
            why = "a custom resource needs its controller on a cluster"
        else:
            why = f"not one of {', '.join(KINDS)}"
        raise doc.error("$.kind", f"{shorten(kind)} ({shorten(api)}) cannot run locally: {why}")
    if api not in KINDS[kind]:
        raise doc.error("$.apiVersion", f"{kind} is read as {' or '.join(KINDS[kind])}, not {shorten(api)}")
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        raise doc.error("$.metadata", "expected metadata with a name")
    name, prefix = meta.get("name"), meta.get("generateName")
    if isinstance(name, str) and name:
        return kind, name, name
    if kind in RUN_KINDS and isinstance(prefix, str) and prefix:
        suffix = "".join(random_tokens.choice(_ALPHABET) for _ in range(GENERATED_SUFFIX))
        return kind, prefix + suffix, prefix
    hint = "metadata.name or metadata.generateName" if kind in RUN_KINDS else "metadata.name"
    raise doc.error("$.metadata", f"a {kind} needs {hint}")


def load_documents(path: Path) -> Documents:
    """Read FILE|DIR into an index; raises DocumentError on the first problem."""
    documents = Documents()
    for file in input_files(path):
        for doc in read_file(file):
            documents.add(doc)
    return documents


def is_kubernetes_input(path: Path) -> bool:
    """Whether PATH is `kubectl apply` input rather than a Sluice workflow file: a folder, several
    documents not led by a Sluice workflow, or one whose apiVersion is not Sluice's (a workflow has
    `sluice.dev/...` or none).
    A file that does not parse is Kubernetes input when it names a tekton.dev apiVersion, so its
    error is reported by this module (same positions as the workflow loader gives)."""
    from controller.spec.yamlload import YamlError, decode, parse_yaml_documents, read_limited

    if path.is_dir():
        return True
    try:
        text = decode(read_limited(str(path)), str(path))
    except (OSError, YamlError):
        return False  # the workflow loader reports it as it always has
    try:
        parsed = parse_yaml_documents(text, str(path))
    except YamlError:
        return "apiVersion: tekton.dev/" in text
    if not parsed:
        return False
    # Several documents after a Sluice workflow are the workflow file's error ("exactly one
    # document"), reported where the second one starts, as `sluice compile` reports it.
    value = parsed[0].value
    api = value.get("apiVersion") if isinstance(value, dict) else None
    if len(parsed) > 1:
        return not (isinstance(api, str) and api.startswith("sluice.dev/"))
    return isinstance(api, str) and not api.startswith("sluice.dev/")
