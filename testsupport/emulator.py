"""kmock's KubernetesEmulator, extended to behave like a real API server where the operator cares.

What it does to objects (versions, generations, status subresource, patches, finalizers, garbage
collection, CRDs and admission) is `testsupport.apistore.ApiStore`; what it checks before storing
an object (names, labels, annotations, sizes) is `testsupport.apichecks`; `testsupport.apihttp`
serves it over HTTP. On top of those, this server

- refuses a request body over 3 MiB (413 `RequestEntityTooLarge`, "limit is 3145728");
- filters lists by `labelSelector` and watches from a `resourceVersion` without stale replays;
- serves a Pod's log (`GET .../pods/NAME/log?container=C`, `tailLines`) from text a test writes
  with `write_log()` (a kubelet's part), with the API server's 400s for a missing or unknown
  container; `follow` is not streamed (the text so far is returned);
- injects faults on demand: `inject(500, "PATCH", "workflowruns", subresource="status", times=2)`.

Not checked (a real API server does): field validation of built-in kinds (a PipelineRun is not
checked against Tekton's webhook), `metadata.generateName` length, managedFields, the 1 MiB
ConfigMap/Secret data limit, label selectors beyond equality, and authorization.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, enums

from testsupport.apichecks import MAX_REQUEST_BYTES, api_error, matches_selector
from testsupport.apistore import ApiStore


@dataclass
class Fault:
    status: int
    method: str
    plural: str
    subresource: str | None
    times: int
    retry_after: int | None = None
    hits: int = 0


@attrs.define(kw_only=True)
class ApiServer(ApiStore):
    _faults: list[Fault] = attrs.field(factory=list, init=False)
    _own_payloads: set[int] = attrs.field(factory=set, init=False)
    # Set by the test fixture once served: where it listens and the kubeconfig pointing at it.
    base_url: str = attrs.field(default="", init=False)
    kubeconfig: str = attrs.field(default="", init=False)
    # (namespace, pod, container) -> what the container printed, as the kubelet would keep it.
    pod_logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._own_payloads = {id(payload) for payload in self._payloads}

    # --- what tests control and read ----------------------------------------------------------------

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
                api_error(
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

    # --- reads: logs, objects, lists, watches ----------------------------------------------------

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
                raise api_error(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}] or one of the init containers: [{' '.join(init)}]",
                )
            container = containers[0]
        elif container not in containers + init:
            raise api_error(400, "BadRequest", f"container {container} is not valid for pod {name}")
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
            raise api_error(404, "NotFound", "the server could not find the requested resource")
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
                i for i in items if matches_selector((i.get("metadata") or {}).get("labels") or {}, selector)
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
