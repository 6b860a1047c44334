"""kmock's KubernetesEmulator, extended to behave like a real API server where the operator cares.

kmock stores objects and streams watch events; on top of that this emulator:

- assigns `uid`, `resourceVersion` (one counter, as etcd does), `generation` (bumped on changes
  outside `metadata` and `status` only), `creationTimestamp`, and names from `generateName`;
- serves the `status` subresource: the main resource ignores `status`, `/status` changes only it;
- applies merge patches and JSON patches (a failed `test` op is a 422, as kopf expects), treats a
  no-op patch as a no-op (no new resourceVersion, no watch event), checks `resourceVersion`
  preconditions (409);
- honours finalizers and garbage-collects dependents through `ownerReferences`;
- filters lists by `labelSelector`;
- registers the resources a CustomResourceDefinition defines when one is created, and rejects
  objects its `openAPIV3Schema` rejects (422), like admission;
- knows the core resources kopf and the operator use (namespaces, events, configmaps, secrets,
  CRDs) and Tekton's PipelineRun/TaskRun;
- checks what a real API server checks before it stores anything (`check_object`): object names
  (DNS-1123 subdomain, <= 253 characters; Events excepted), label keys and values (syntax, 63
  characters, prefix <= 253), annotations (keys like labels, 256 KiB in all), a request body over
  3 MiB (413 `RequestEntityTooLarge`, "limit is 3145728"), and a stored object over etcd's 1.5 MiB
  (500 "etcdserver: request is too large", which is what the API server answers, not a 4xx);
- serves a Pod's log (`GET .../pods/NAME/log?container=C`, `tailLines`) from text a test writes
  with `write_log()` (a kubelet's part), with the API server's 400s for a missing or unknown
  container; `follow` is not streamed (the text so far is returned);
- injects faults on demand: `inject(500, "PATCH", "workflowruns", subresource="status", times=2)`.

Not checked (a real API server does): field validation of built-in kinds (a PipelineRun is not
checked against Tekton's webhook), `metadata.generateName` length, managedFields, the 1 MiB
ConfigMap/Secret data limit, label selectors beyond equality, and authorization.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import aiohttp.web
import attrs
import jsonpatch
import jsonschema
import kmock
import yaml
from kmock._internal import apps, dicts, enums

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

# What kube-apiserver and etcd enforce (k8s.io/apimachinery validation, apiserver config, etcd).
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # apiserver's MaxRequestBodyBytes: 413 above it
MAX_OBJECT_BYTES = 1536 * 1024  # etcd's --max-request-bytes default (1.5 MiB)
MAX_ANNOTATIONS_BYTES = 256 * 1024  # TotalAnnotationSizeLimitB
MAX_NAME = 253
MAX_LABEL = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Fault:
    status: int
    method: str
    plural: str
    subresource: str | None
    times: int
    retry_after: int | None = None
    hits: int = 0


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


def _qualified_name_problem(key: str) -> str | None:
    """A label or annotation key: `[prefix/]name`, prefix a DNS subdomain <= 253, name <= 63."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > MAX_NAME or not _DNS_SUBDOMAIN.match(prefix)):
        return f"{key!r}: prefix part must be a DNS-1123 subdomain of at most {MAX_NAME} characters"
    if not name or len(name) > MAX_LABEL or not _QUALIFIED_NAME.match(name):
        return (
            f"{key!r}: name part must be at most {MAX_LABEL} alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def check_object(kind: str, obj: Mapping[str, Any]) -> None:
    """The metadata validation and etcd size limit of a real API server (422 / 500)."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if kind != "Event" and (len(name) > MAX_NAME or not _DNS_SUBDOMAIN.match(name)):
        raise _error(
            422,
            "Invalid",
            f'{kind} "{name[:80]}" is invalid: metadata.name: Invalid value: a lowercase RFC 1123 '
            f"subdomain of at most {MAX_NAME} characters is required",
        )
    for key, value in (meta.get("labels") or {}).items():
        problem = _qualified_name_problem(str(key))
        if problem is None and (
            not isinstance(value, str) or len(value) > MAX_LABEL or not _LABEL_VALUE.match(value)
        ):
            problem = (
                f"{str(value)[:80]!r}: must be no more than {MAX_LABEL} characters of alphanumerics, "
                "'-', '_' or '.', starting and ending with an alphanumeric"
            )
        if problem:
            raise _error(
                422, "Invalid", f'{kind} "{name}" is invalid: metadata.labels: Invalid value: {problem}'
            )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        problem = _qualified_name_problem(str(key))
        if problem:
            raise _error(
                422, "Invalid", f'{kind} "{name}" is invalid: metadata.annotations: Invalid value: {problem}'
            )
    total = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if total > MAX_ANNOTATIONS_BYTES:
        raise _error(
            422,
            "Invalid",
            f'{kind} "{name}" is invalid: metadata.annotations: Too long: must have at most '
            f"{MAX_ANNOTATIONS_BYTES} bytes",
        )
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size > MAX_OBJECT_BYTES:
        # what kube-apiserver passes on from etcd (kubernetes/kubernetes#112152): a 500, not a 4xx
        raise _error(500, "InternalError", "etcdserver: request is too large")


def _matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a` joined by commas."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _faults: list[Fault] = attrs.field(factory=list, init=False)
    _with_status: set[kmock.resource] = attrs.field(factory=set, init=False)
    _cluster_scoped: set[kmock.resource] = attrs.field(factory=set, init=False)
    _schemas: dict[kmock.resource, dict[str, Any]] = attrs.field(factory=dict, init=False)
    resource_version: int = attrs.field(default=0, init=False)
    _own_payloads: set[int] = attrs.field(factory=set, init=False)
    # Set by the test fixture once served: where it listens and the kubeconfig pointing at it.
    base_url: str = attrs.field(default="", init=False)
    kubeconfig: str = attrs.field(default="", init=False)
    # (plural, namespace, name) -> time.monotonic() of creation, for latency measurements.
    created_at: dict[tuple[str, str | None, str], float] = attrs.field(factory=dict, init=False)
    # (namespace, pod, container) -> what the container printed, as the kubelet would keep it.
    pod_logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._own_payloads = {id(payload) for payload in self._payloads}
        for path, (kind, namespaced, status) in CORE_RESOURCES.items():
            self.register(path, kind, namespaced=namespaced, status=status)

    # --- setup -----------------------------------------------------------------------------------

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

    def inject(
        self,
        status: int,
        method: str,
        plural: str,
        *,
        subresource: str | None = None,
        times: int = 1,
        retry_after: int | None = None,
    ) -> Fault:
        """The next `times` matching requests fail with `status` before touching any state."""
        fault = Fault(status, method.upper(), plural, subresource, times, retry_after)
        self._faults.append(fault)
        return fault

    def objects_of(self, path: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Live objects of a resource (for assertions)."""
        resource = kmock.resource(path)
        return [
            obj.raw
            for (res, ns, _), obj in list(self.objects.items())
            if res == resource and not obj.deleted and (namespace is None or ns == namespace)
        ]

    def write_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        """Append to a container's log (what the kubelet collects from its stdout and stderr)."""
        key = (namespace, pod, container)
        self.pod_logs[key] = self.pod_logs.get(key, "") + text

    def writes(self, plural: str | None = None) -> int:
        """How many state-changing requests were served (optionally for one resource plural)."""
        return sum(
            1
            for r in self._requests
            if r.method in (enums.method.POST, enums.method.PATCH, enums.method.DELETE, enums.method.PUT)
            and r.resource is not None
            and (plural is None or r.resource.plural == plural)
        )

    # --- request handling ------------------------------------------------------------------------

    def _take_fault(self, request: kmock.Request) -> Fault | None:
        if request.resource is None:
            return None
        for fault in self._faults:
            if (
                fault.hits < fault.times
                and fault.method == str(request.method.value).upper()
                and fault.plural == request.resource.plural
                and fault.subresource == request.subresource
                and request.params.get("watch") != "true"
            ):
                fault.hits += 1
                return fault
        return None

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        fault = self._take_fault(request)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            reasons = {
                409: "Conflict",
                429: "TooManyRequests",
                500: "InternalError",
                503: "ServiceUnavailable",
            }
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "status": "Failure",
                    "code": fault.status,
                    "reason": reasons.get(fault.status, "Injected"),
                    "message": "injected fault",
                },
                status=fault.status,
                headers=headers,
            )
        mutating = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)
        if request.body is not None and len(request.body) > MAX_REQUEST_BYTES:
            return await self._render_error(
                _error(
                    413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BYTES}"
                )
            )
        direct = {
            enums.action.FETCH: self._serve_fetch,
            enums.action.LIST: self._serve_list,
            enums.action.CREATE: self._serve_create,
            enums.action.UPDATE: self._serve_update,
            enums.action.DELETE: self._serve_delete,
        }
        try:
            if (
                request.resource is not None
                and request.resource.plural == "pods"
                and request.subresource == "log"
                and request.action == enums.action.FETCH
            ):
                return self._serve_log(request)
            if request.resource is not None and request.action in mutating:
                async with self._lock:
                    request = await self._mutate(request)
            resource_call = request.resource is not None and bool(request.resource.plural)
            if resource_call and request.action in direct and not self._payloads_of_users():
                # Served here: kmock's router checks each reaction against every request it has
                # ever recorded, which makes thousands of objects quadratic (benchmarks).
                payload = await direct[request.action](request)
                status = 201 if request.action == enums.action.CREATE else 200
                return aiohttp.web.json_response(payload, status=status)
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)
        return await apps.RawHandler._handle(self, request)

    def _payloads_of_users(self) -> bool:
        """Whether a test added its own reactions (then kmock's router must see every request)."""
        return any(id(payload) not in self._own_payloads for payload in self._payloads)

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
            raise _error(400, "BadRequest", "the body must be a JSON object")
        data = copy.deepcopy(request.data)
        meta = data.setdefault("metadata", {})
        namespace = self._namespace_of(request, data)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + secrets.token_hex(3)[:5]
        if not name:
            raise _error(422, "Invalid", "metadata.name or metadata.generateName is required")
        key = (resource, namespace, name)
        if (existing := self.objects._objects.get(key)) is not None and not existing.deleted:
            raise _error(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')
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
            raise _error(404, "NotFound", f'{resource.plural} "{request.name}" not found')
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
                    raise _error(409, "Conflict", "the object has been modified; please apply your changes")
                patched = dict(dicts.merge_patch_dict(current, patch))
            else:
                raise _error(400, "BadRequest", "unsupported patch body")
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise _error(422, "Invalid", f"the patch cannot be applied: {exc}") from None
        except ValueError as exc:
            raise _error(422, "Invalid", f"the patch cannot be applied: {exc}") from None
        patched = copy.deepcopy(patched)
        if request.subresource == "status":
            if resource not in self._with_status:
                raise _error(404, "NotFound", f"{resource.plural} has no status subresource")
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
            raise _error(404, "NotFound", f"unknown subresource {request.subresource}")
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

    # --- lists, CRDs, admission ------------------------------------------------------------------

    def _serve_log(self, request: kmock.Request) -> aiohttp.web.Response:
        """A container's log as text/plain, as the API server proxies it from the kubelet."""
        _, obj = self._stored(request)
        spec = obj.raw.get("spec") or {}
        name = request.name
        containers = [str(c.get("name")) for c in spec.get("containers") or []]
        init = [str(c.get("name")) for c in spec.get("initContainers") or []]
        container = request.params.get("container")
        if not container:
            if len(containers) != 1:
                raise _error(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}] or one of the init containers: [{' '.join(init)}]",
                )
            container = containers[0]
        elif container not in containers + init:
            raise _error(400, "BadRequest", f"container {container} is not valid for pod {name}")
        text = self.pod_logs.get((str(request.namespace), str(name), container), "")
        tail = request.params.get("tailLines")
        if tail and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[len(lines) - int(tail) :]) if int(tail) else ""
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        _, obj = self._stored(request)
        return obj.raw

    async def _serve_list(self, request: kmock.Request) -> Any:
        if request.resource not in self.resources:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        items = [
            obj.raw
            for (res, ns, _), obj in list(self.objects.items())
            if res == request.resource
            and not obj.deleted
            and (request.namespace is None or ns == request.namespace)
        ]
        selector = request.params.get("labelSelector")
        if selector:
            items = [
                i for i in items if _matches_selector((i.get("metadata") or {}).get("labels") or {}, selector)
            ]
        return {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": str(self.resource_version)},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        """Watch from `resourceVersion` like a real API server: no stale replays, no lost events.

        kmock replays every object as ADDED and subscribes to changes only afterwards, so a change
        made in between is lost and the replay can be older than what the client already has.
        Here the subscription and the snapshot are taken together under the lock, and only
        objects newer than the requested version are replayed.
        """
        yield b""  # send the headers: the stream is open even if nothing happens
        assert request.resource is not None
        since_text = request.params.get("resourceVersion") or "0"
        since = int(since_text) if since_text.isdigit() else 0
        async with self._lock:
            bus = self._buses[request.resource]
            mark = await bus.mark()
            replay = [
                copy.deepcopy(obj.raw)
                for (res, ns, _), obj in list(self.objects.items())
                if res == request.resource
                and not obj.deleted
                and (request.namespace is None or ns == request.namespace)
                and int((obj.raw.get("metadata") or {}).get("resourceVersion") or 0) > since
            ]
        try:
            for obj in replay:
                yield {"type": "ADDED", "object": obj}
            async for event in bus.stream(since=mark):
                meta = (event.get("object") or {}).get("metadata") or {}
                if request.namespace is not None and meta.get("namespace") != request.namespace:
                    continue
                if request.name is not None and meta.get("name") != request.name:
                    continue
                yield event
        finally:
            await bus.unmark(mark)

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
        body = {k: v for k, v in obj.items() if k != "metadata"}
        validator = jsonschema.Draft4Validator(_without_nullables(schema))
        problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if problems:
            first = problems[0]
            where = ".".join(str(p) for p in first.absolute_path) or "<root>"
            raise _error(422, "Invalid", f"{where}: {first.message}")


def _without_nullables(schema: Any) -> Any:
    """OpenAPI's `nullable: true` -> JSON Schema's null type, so admission accepts nulls as the API does."""
    if isinstance(schema, list):
        return [_without_nullables(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result = {k: _without_nullables(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        result["type"] = ["integer", "string"]
    return result


class _RawServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's raw test server reading bodies up to the API server's limit (aiohttp's own is
    1 MiB), so the emulator, not aiohttp, decides what is too large."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        loop = self._loop or asyncio.get_running_loop()

        def request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
            return aiohttp.web.BaseRequest(
                message, payload, protocol, writer, task, loop, client_max_size=2 * MAX_REQUEST_BYTES
            )

        server = aiohttp.web.Server(
            self._handler, loop=self._loop, debug=debug, request_factory=request, **kwargs
        )
        return aiohttp.web.ServerRunner(server, debug=debug, **kwargs)


def http_server(server: ApiServer) -> kmock.Server:
    """The emulator served over HTTP on loopback (`async with http_server(s) as http: http.url`)."""
    return kmock.Server(server, server_cls=_RawServer)


def write_kubeconfig(path: Path, server_url: str) -> Path:
    """A kubeconfig for a plain-HTTP emulator at `server_url` (tests, benchmarks)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server_url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path
