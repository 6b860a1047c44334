"""Tekton input to runs: documents read, references resolved, each run checked before any runs.

`prepare_documents(FILE|DIR)` gives one `InputRun` per PipelineRun and TaskRun of the input, in
the order they were read (or the one `--run NAME` picks), each an embedded PipelineRun the
executor runs as it is. Everything that can be refused is refused here, for every run, before the
first step of the first run starts: an unknown kind, a reference the input cannot satisfy, a field
the executor does not honour (`check_pipelinerun`, its path moved to the document that wrote it),
a ConfigMap or Secret a binding or `env` needs that the input does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.executors.local.documents import Document, DocumentError, Documents, load_documents
from controller.executors.local.objects import (
    ClusterObjects,
    ObjectError,
    config_map_data,
    missing_config_map,
    secret_data,
)
from controller.executors.local.pipelinerun_check import check_pipelinerun
from controller.executors.local.references import Provenance, resolve_pipelinerun
from controller.executors.local.secrets import LocalSecrets, SecretError
from controller.executors.local.taskrun import wrap_taskrun
from controller.executors.local.tekton import UnsupportedError


@dataclass
class InputRun:
    """One run of the input, resolved: what `sluice run` executes and how it reports it."""

    kind: str  # PipelineRun | TaskRun
    label: str  # the name the user gave (metadata.name or generateName)
    pipelinerun: dict[str, Any]
    provenance: Provenance
    workflow: str  # what `sluice runs` lists it under: the Pipeline's or Task's name, else the run's
    taskrun_names: dict[str, str] = field(default_factory=dict)


def prepare_documents(
    path: Path, pick: str | None, name_run: Callable[[str], str], home: Path, *, containers: bool = False
) -> tuple[list[InputRun], ClusterObjects]:
    """Every run of FILE|DIR (or the one named `pick`), resolved and checked; raises DocumentError.
    `home`: the Sluice home whose local secrets (with the input's Secrets) must hold what runs use."""
    documents = load_documents(path)
    runs = _chosen(documents, path, pick)
    objects = _objects(documents)
    secrets = LocalSecrets(home, objects.secrets)
    prepared = []
    for doc in runs:
        item = _resolve(documents, doc, name_run)
        try:
            check_pipelinerun(item.pipelinerun, containers=containers)
            _check_objects(item.pipelinerun, objects)
            _check_secrets(item.pipelinerun, secrets)
        except (UnsupportedError, SecretError) as exc:
            raise DocumentError(item.provenance.locate(str(exc))) from None
        prepared.append(item)
    return prepared, objects


def _chosen(documents: Documents, path: Path, pick: str | None) -> list[Document]:
    runs = documents.runs
    if not runs:
        held = ", ".join(sorted({k for k, v in documents.by_kind.items() if v})) or "nothing"
        raise DocumentError(f"{path}: no PipelineRun or TaskRun to run (the input holds {held})")
    if pick is None:
        return runs
    chosen = [doc for doc in runs if pick in (doc.label, doc.body.get("metadata", {}).get("name"))]
    if not chosen:
        names = ", ".join(f"{doc.label} ({doc.kind})" for doc in runs)
        raise DocumentError(f"{path}: --run {pick}: no such run; the input's runs are {names}")
    return chosen[:1]


def _objects(documents: Documents) -> ClusterObjects:
    objects = ClusterObjects()
    for kind, target, read in (
        ("ConfigMap", objects.config_maps, config_map_data),
        ("Secret", objects.secrets, secret_data),
    ):
        for name, doc in documents.by_kind.get(kind, {}).items():
            try:
                target[name] = read(doc.body)
            except ObjectError as exc:
                where, _, why = str(exc).partition(": ")
                raise doc.error(where, why) from None
    return objects


def _resolve(documents: Documents, doc: Document, name_run: Callable[[str], str]) -> InputRun:
    # a generateName's name is new already; a fixed name gets a fresh run id each time it runs
    name = doc.name if doc.label != doc.name else name_run(doc.name)
    if doc.kind == "TaskRun":
        run, provenance, task = wrap_taskrun(documents, doc)
        run["metadata"]["name"] = name
        return InputRun("TaskRun", doc.label, run, provenance, task, {task: name})
    run, provenance = resolve_pipelinerun(documents, doc)
    meta = run.setdefault("metadata", {}) if isinstance(run.get("metadata"), dict) else {}
    labels = meta.get("labels") or {}
    workflow = labels.get("sluice.dev/workflow") or labels.get("tekton.dev/pipeline") or doc.name
    meta.pop("generateName", None)
    meta["name"] = name
    return InputRun("PipelineRun", doc.label, run, provenance, workflow)


def _env_owners(run: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, step or stepTemplate) of every task of the run: what has `env` and `envFrom`."""
    pipeline = run["spec"]["pipelineSpec"]
    for section in ("tasks", "finally"):
        for i, task in enumerate(pipeline.get(section) or []):
            spec = task.get("taskSpec") or {}
            at = f"$.spec.pipelineSpec.{section}[{i}].taskSpec"
            yield f"{at}.stepTemplate", spec.get("stepTemplate") or {}
            for j, step in enumerate(spec.get("steps") or []):
                yield f"{at}.steps[{j}]", step


def _env_refs(run: dict[str, Any], key_ref: str, source_ref: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, reference) of every step and stepTemplate `env` `valueFrom.<key_ref>`
    (configMapKeyRef, secretKeyRef) and `envFrom` `<source_ref>` (configMapRef, secretRef; a
    reference without a key) of the run."""
    for where, owner in _env_owners(run):
        for k, var in enumerate(owner.get("env") or []):
            ref = (var.get("valueFrom") or {}).get(key_ref)
            if ref is not None:
                yield f"{where}.env[{k}].valueFrom.{key_ref}", ref
        for k, source in enumerate(owner.get("envFrom") or []):
            if source_ref in source:
                yield f"{where}.envFrom[{k}].{source_ref}", source[source_ref]


def _check_objects(run: dict[str, Any], objects: ClusterObjects) -> None:
    """Refuse, before anything runs, a ConfigMap key an env or a workspace needs that is missing."""
    for where, ref in _env_refs(run, "configMapKeyRef", "configMapRef"):
        if ref.get("optional"):
            continue
        if ref.get("name") not in objects.config_maps:
            raise UnsupportedError(f"{where}.name: {missing_config_map(ref.get('name'), objects)}")
        if "key" in ref and ref["key"] not in objects.config_maps[ref["name"]]:
            raise UnsupportedError(f"{where}.key: ConfigMap {ref['name']!r} has no key {ref['key']!r}")
    for i, binding in enumerate(run["spec"].get("workspaces") or []):
        sources = [(binding.get("configMap"), f"$.spec.workspaces[{i}].configMap")]
        projected = binding.get("projected") or {}
        sources += [
            (source.get("configMap"), f"$.spec.workspaces[{i}].projected.sources[{j}].configMap")
            for j, source in enumerate(projected.get("sources") or [])
        ]
        for source, where in sources:
            if source and not source.get("optional") and source.get("name") not in objects.config_maps:
                raise UnsupportedError(f"{where}.name: {missing_config_map(source.get('name'), objects)}")


def _check_secrets(run: dict[str, Any], secrets: LocalSecrets) -> None:
    """Refuse, before anything runs, a Secret (or key) a workspace, `env` or `envFrom` needs that
    neither the input nor local secrets hold (`optional` ones excepted)."""
    for where, ref in _secret_refs(run):
        if ref.get("optional"):
            continue
        if "key" in ref:
            secrets.require(ref.get("name", ""), ref["key"], False, where)
        elif not secrets.keys(ref.get("name", "")):
            raise SecretError(
                f"{where}: secret {ref.get('name')!r} is neither in the input nor in local secrets "
                f"({secrets.path} or SLUICE_SECRET_* variables)"
            )


def _secret_refs(run: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, {name[, key], optional}) of every Secret the run's bindings and steps use."""
    for i, binding in enumerate(run["spec"].get("workspaces") or []):
        if "secret" in binding:
            source = binding["secret"]
            yield f"$.spec.workspaces[{i}].secret", {**source, "name": source.get("secretName", "")}
        for j, source in enumerate((binding.get("projected") or {}).get("sources") or []):
            if "secret" in source:
                yield f"$.spec.workspaces[{i}].projected.sources[{j}].secret", source["secret"]
    yield from _env_refs(run, "secretKeyRef", "secretRef")
