"""The storage half of the Kubernetes API emulator: what a real API server does to an object.

On top of kmock's object store this

- assigns `uid`, `resourceVersion` (one counter, as etcd does), `generation` (bumped on changes
  outside `metadata` and `status` only), `creationTimestamp`, and names from `generateName`;
- keeps the `status` subresource apart: the main resource ignores `status`, `/status` changes only it;
- applies merge patches and JSON patches (a failed `test` op is a 422, as kopf expects), treats a
  no-op patch as a no-op (no new resourceVersion, no watch event), checks `resourceVersion`
  preconditions (409);
- honours finalizers and garbage-collects dependents through `ownerReferences`;
- registers the resources a CustomResourceDefinition defines when one is created, and rejects
  objects its `openAPIV3Schema` rejects (422), like admission;
- knows the core resources kopf and the operator use (namespaces, events, configmaps, secrets,
  CRDs) and Tekton's PipelineRun/TaskRun;
- checks each object as a real API server does before storing it (`apichecks.check_object`).

Serving requests (faults, lists, watches, logs) is `testsupport.emulator.ApiServer`'s job.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import dicts, enums

from testsupport.apichecks import admission_problem, api_error, check_object

CORE_RESOURCES: dict[str, tuple[str, bool, bool]] = {
    # path: (kind, namespaced, has status subresource)
    "v1/namespaces": ("Namespace", False, True),
    "v1/events": ("Event", True, False),
    "v1/configmaps": ("ConfigMap", True, False),
    "v1/secrets": ("Secret", True, False),
    "v1/pods": ("Pod", True, True),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False, True),
    "tekton.dev/v1/pipelineruns": ("PipelineRun", True, True),
    "tekton.dev/v1/taskruns": ("TaskRun", True, True),
}
VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class ApiStore(kmock.KubernetesEmulator):
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _with_status: set[kmock.resource] = attrs.field(factory=set, init=False)
    _cluster_scoped: set[kmock.resource] = attrs.field(factory=set, init=False)
    _schemas: dict[kmock.resource, dict[str, Any]] = attrs.field(factory=dict, init=False)
    resource_version: int = attrs.field(default=0, init=False)
    # (plural, namespace, name) -> time.monotonic() of creation, for latency measurements.
    created_at: dict[tuple[str, str | None, str], float] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for path, (kind, namespaced, status) in CORE_RESOURCES.items():
            self.register(path, kind, namespaced=namespaced, status=status)

    def register(self, path: str, kind: str, *, namespaced: bool = True, status: bool = True) -> None:
        resource = kmock.resource(path)
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs=VERBS,
            subresources={"status"} if status else set(),
        )
        if status:
            self._with_status.add(resource)
        if not namespaced:
            self._cluster_scoped.add(resource)

    def _namespace_of(self, request: kmock.Request, data: Mapping[str, Any]) -> str | None:
        assert request.resource is not None
        if request.resource in self._cluster_scoped:
            return None
        return request.namespace or (data.get("metadata") or {}).get("namespace") or "default"

    async def _mutate(self, request: kmock.Request) -> kmock.Request:
        if request.action == enums.action.CREATE:
            return await self._create(request)
        if request.action == enums.action.UPDATE:
            await self._update(request)
        elif request.action == enums.action.DELETE:
            await self._delete(request)
        return request

    def _bump(self) -> str:
        self.resource_version = next(self._versions)
        return str(self.resource_version)

    async def _create(self, request: kmock.Request) -> kmock.Request:
        resource = request.resource
        assert resource is not None
        if not isinstance(request.data, dict):
            raise api_error(400, "BadRequest", "the body must be a JSON object")
        data = copy.deepcopy(request.data)
        meta = data.setdefault("metadata", {})
        namespace = self._namespace_of(request, data)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + secrets.token_hex(3)[:5]
        if not name:
            raise api_error(422, "Invalid", "metadata.name or metadata.generateName is required")
        key = (resource, namespace, name)
        if (existing := self.objects._objects.get(key)) is not None and not existing.deleted:
            raise api_error(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')
        meta.update(
            name=name,
            uid=str(uuid.uuid4()),
            resourceVersion=self._bump(),
            generation=1,
            creationTimestamp=_now(),
        )
        if namespace is not None:
            meta["namespace"] = namespace
        for server_owned in ("deletionTimestamp", "managedFields"):
            meta.pop(server_owned, None)
        if resource in self._with_status:
            data.pop("status", None)
        self._admit(resource, data)
        check_object(str(self.resources[resource].kind) if resource in self.resources else "", data)
        self.created_at[(resource.plural or "", namespace, name)] = time.monotonic()
        if existing is not None:
            existing.create(data)
        else:
            self.objects[key] = data
        if resource.plural == "customresourcedefinitions":
            self._learn_crd(data)
        await self._buses[resource].put({"type": "ADDED", "object": copy.deepcopy(data)})
        # kmock routes a request by its identity (it must be the very object it recorded), so the
        # server-completed body is set on the frozen request in place rather than on a copy.
        object.__setattr__(request, "data", data)
        object.__setattr__(request, "namespace", namespace)
        return request

    def _stored(self, request: kmock.Request) -> tuple[tuple[Any, Any, Any], Any]:
        """The key and the stored object a request names (one dict lookup instead of kmock's scan
        over every stored object); 404 when there is none, or it is deleted."""
        resource = request.resource
        assert resource is not None
        namespace = None if resource in self._cluster_scoped else request.namespace
        assert request.name is not None
        key = (resource, namespace, request.name)
        obj = self.objects._objects.get(key)
        if obj is None or obj.deleted:
            raise api_error(404, "NotFound", f'{resource.plural} "{request.name}" not found')
        return key, obj

    async def _update(self, request: kmock.Request) -> None:
        key, obj = self._stored(request)
        resource = key[0]
        current = copy.deepcopy(obj.raw)
        patch = request.data
        try:
            if isinstance(patch, list):
                patched = jsonpatch.apply_patch(copy.deepcopy(current), patch)
            elif isinstance(patch, dict):
                wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
                if wanted_rv and wanted_rv != current["metadata"].get("resourceVersion"):
                    raise api_error(
                        409, "Conflict", "the object has been modified; please apply your changes"
                    )
                patched = dict(dicts.merge_patch_dict(current, patch))
            else:
                raise api_error(400, "BadRequest", "unsupported patch body")
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise api_error(422, "Invalid", f"the patch cannot be applied: {exc}") from None
        except ValueError as exc:
            raise api_error(422, "Invalid", f"the patch cannot be applied: {exc}") from None
        patched = copy.deepcopy(patched)
        if request.subresource == "status":
            if resource not in self._with_status:
                raise api_error(404, "NotFound", f"{resource.plural} has no status subresource")
            new = copy.deepcopy(current)
            if patched.get("status") is None:
                new.pop("status", None)
            else:
                new["status"] = patched["status"]
        elif request.subresource is None:
            new = patched
            if resource in self._with_status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
        else:
            raise api_error(404, "NotFound", f"unknown subresource {request.subresource}")
        meta = new.setdefault("metadata", {})
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if fixed in current["metadata"]:
                meta[fixed] = current["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return  # a no-op patch: no new version, no event (as a real API server)
        content = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        before = {k: v for k, v in current.items() if k not in ("metadata", "status")}
        if content != before:
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        self._admit(resource, new)
        check_object(str(self.resources[resource].kind) if resource in self.resources else "", new)
        meta["resourceVersion"] = self._bump()
        obj.history.append(new)
        await self._buses[resource].put({"type": "MODIFIED", "object": copy.deepcopy(new)})
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._remove(key)

    async def _delete(self, request: kmock.Request) -> None:
        key, _ = self._stored(request)
        await self._delete_key(key)

    async def _delete_key(self, key: tuple[Any, Any, Any]) -> None:
        obj = self.objects._objects[key]
        meta = obj.raw.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            new = copy.deepcopy(obj.raw)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["resourceVersion"] = self._bump()
            obj.history.append(new)
            await self._buses[key[0]].put({"type": "MODIFIED", "object": copy.deepcopy(new)})
        else:
            await self._remove(key)

    async def _remove(self, key: tuple[Any, Any, Any]) -> None:
        """Delete for good, then garbage-collect the objects it owned (background propagation)."""
        obj = self.objects._objects[key]
        last = copy.deepcopy(obj.raw)
        last["metadata"]["resourceVersion"] = self._bump()
        obj.history.append(last)
        obj.delete()
        await self._buses[key[0]].put({"type": "DELETED", "object": last})
        uid = last["metadata"].get("uid")
        dependents = [
            other_key
            for other_key, other in list(self.objects.items())
            if not other.deleted
            and any(
                ref.get("uid") == uid
                for ref in (other.raw.get("metadata") or {}).get("ownerReferences") or []
            )
        ]
        for other_key in dependents:
            await self._delete_key(other_key)

    # --- CRDs, admission ---------------------------------------------------------------------------

    def _learn_crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            path = f"{spec['group']}/{version['name']}/{names['plural']}"
            has_status = "status" in (version.get("subresources") or {})
            self.register(path, names["kind"], namespaced=spec.get("scope") != "Cluster", status=has_status)
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                self._schemas[kmock.resource(path)] = schema

    def _admit(self, resource: kmock.resource, obj: Mapping[str, Any]) -> None:
        schema = self._schemas.get(resource)
        if schema is None:
            return
        problem = admission_problem(schema, obj)
        if problem is not None:
            raise api_error(422, "Invalid", problem)
