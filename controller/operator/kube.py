"""A small async Kubernetes API client for the operator's own calls.

kopf watches and patches the objects it handles; everything else the operator does (create a
PipelineRun, write a status, read a Workflow, post an Event) goes through this client, built from
the same `kopf.ConnectionInfo` kopf logs in with, so any KUBECONFIG works, plain HTTP included.

Error classes: 429, 5xx, timeouts and connection errors are temporary and retried here with the
configured backoffs (honouring `Retry-After`, capped by the largest backoff); a 409 on a patch is
retried the same way (the API server lost a race); everything else is raised as `ApiError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    import kopf

logger = logging.getLogger("sluice.operator.kube")

MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = "sluice-operator/0.1"


class ApiError(Exception):
    """An API call that failed for good: status, Kubernetes reason, one-line message."""

    def __init__(self, status: int, reason: str, message: str):
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")

    @property
    def temporary(self) -> bool:
        return self.status in (409, 429) or self.status >= 500 or self.status == 0


def error_class(status: int) -> str:
    """A bounded label for metrics: never the message, never the URL."""
    if status == 0:
        return "connection"
    if status >= 500:
        return "5xx"
    if status in (404, 409, 422, 429):
        return str(status)
    return "4xx"


def resource_path(
    group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{urllib.parse.quote(name, safe='')}"
    return base


class KubeClient:
    """Async calls against one API server; one aiohttp session per operator process."""

    def __init__(
        self,
        info: kopf.ConnectionInfo,
        *,
        backoffs: tuple[float, ...],
        timeout: float,
        on_error: Callable[[str, str, int], None] | None = None,
        on_write: Callable[[str, str], None] | None = None,
    ):
        self._server = info.server.rstrip("/")
        self._headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **info.as_http_headers(),
        }
        ssl_context: Any = None
        if self._server.startswith("https://"):
            ssl_context = info.as_ssl_context()
        self._ssl = ssl_context
        self._backoffs = backoffs
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._on_error = on_error
        self._on_write = on_write

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=32)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        retry_conflicts: bool = False,
    ) -> dict[str, Any]:
        """One API call with retries of temporary failures; returns the decoded JSON body."""
        kind = _kind_of(path)
        verb = method.lower()
        attempts = len(self._backoffs) + 1
        for attempt in range(attempts):
            try:
                return await self._once(method, path, body=body, params=params, content_type=content_type)
            except ApiError as exc:
                if self._on_error is not None:
                    self._on_error(kind, verb, exc.status)
                retryable = exc.status == 429 or exc.status >= 500 or exc.status == 0
                retryable = retryable or (exc.status == 409 and retry_conflicts)
                if not retryable or attempt == attempts - 1:
                    raise
                delay = self._backoffs[attempt]
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None:
                    delay = min(max(delay, retry_after), max(self._backoffs))
                logger.debug("API %s %s failed (%s); retrying in %.2fs", method, path, exc.status, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        params: Mapping[str, str] | None,
        content_type: str,
    ) -> dict[str, Any]:
        url = self._server + path
        headers = {"Content-Type": content_type} if body is not None else {}
        if method.upper() in ("POST", "PATCH", "PUT", "DELETE") and self._on_write is not None:
            self._on_write(_kind_of(path), method.lower())
        try:
            async with self._client().request(
                method, url, json=body, params=params, headers=headers
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    error = _api_error(response.status, text)
                    retry_after = response.headers.get("Retry-After")
                    if retry_after:
                        with contextlib.suppress(ValueError):
                            error.retry_after = float(retry_after)  # type: ignore[attr-defined]
                    raise error
                if not text:
                    return {}
                decoded = await response.json(content_type=None)
                return decoded if isinstance(decoded, dict) else {}
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ApiError(0, type(exc).__name__, "the API server did not answer") from exc

    # --- conveniences ------------------------------------------------------------------------

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        items = (await self.request("GET", path, params=params)).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=dict(body))

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge-patch an object (or its `/status`); None if it is gone."""
        try:
            return await self.request(
                "PATCH", path, body=dict(patch), content_type=MERGE_PATCH, retry_conflicts=True
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def delete(self, path: str) -> None:
        try:
            await self.request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status != 404:
                raise


def _api_error(status: int, text: str) -> ApiError:
    import json

    reason, message = "", ""
    try:
        decoded = json.loads(text)
        if isinstance(decoded, dict):
            reason = str(decoded.get("reason") or "")
            message = str(decoded.get("message") or "")
    except ValueError:
        pass
    message = " ".join(message.split())[:300]
    return ApiError(status, reason or "Error", message or f"HTTP {status}")


def _kind_of(path: str) -> str:
    """The resource plural of an API path, a bounded label ("pipelineruns", "events", ...)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:]
    return parts[0] if parts else "unknown"
