"""The Codeset reconciler: from a poll result to status, synced Workflows and triggered runs.

Fed by watch events (`observe`) and by the shared poller. Per Codeset, work runs one at a time and
coalesces: while one result is being handled, only the newest next one is kept. A commit equal to
`status.revision` (same generation, no forced refresh, no earlier failure) costs no fetch: only
`lastFetchedAt` moves. A new commit is fetched (shared with every Codeset on the same source), its
tracked content digested (after `ignore` patterns), `sync.path` applied, and, when the digest
changed, runs triggered; then one status patch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from controller.api.codeset import CodesetSpec, InvalidCodeset, parse_codeset, webhook_path
from controller.api.conditions import (
    AUTHENTICATION_FAILED,
    FETCH_FAILED,
    INVALID_SPEC,
    INVALID_WORKFLOW,
    NEW_REVISION,
    REF_NOT_FOUND,
    SUCCEEDED,
)
from controller.api.meta import CODESET, GROUP, VERSION, object_stub
from controller.operator import conditions as cond
from controller.operator.codesets.git import Git, GitLimits
from controller.operator.codesets.gitcredentials import Credentials
from controller.operator.codesets.giterrors import GitError
from controller.operator.codesets.metrics import CodesetMetrics
from controller.operator.codesets.poller import Key, Poller, PollResult
from controller.operator.codesets.snapshots import Snapshots
from controller.operator.codesets.spec import Source, source_of
from controller.operator.codesets.sync import SyncOutcome, apply_workflows, desired_workflows
from controller.operator.codesets.triggers import TriggerOutcome, trigger_runs
from controller.operator.codesets.webhooks import WebhookReceiver, WebhookTarget
from controller.operator.events import post_event
from controller.operator.kube import ApiError, resource_path
from controller.operator.runtime import Runtime

logger = logging.getLogger("sluice.operator.codesets")

REQUEST_ANNOTATION = f"{GROUP}/reconcile-requested-at"
# Reasons after which the same commit must be handled again, not skipped as "already done".
_RETRY_REASONS = frozenset({FETCH_FAILED, AUTHENTICATION_FAILED, REF_NOT_FOUND, INVALID_SPEC})


@dataclasses.dataclass(frozen=True)
class CodesetConfig:
    jitter: float = 0.1
    max_concurrent_fetches: int = 4
    max_concurrent_polls: int = 16
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 9443  # 0 picks a free port; -1 turns the receiver off
    limits: GitLimits = dataclasses.field(default_factory=GitLimits)

    @classmethod
    def from_env(cls) -> CodesetConfig:
        base = cls()
        env = os.environ
        return cls(
            jitter=float(env.get("SLUICE_CODESET_JITTER", base.jitter)),
            max_concurrent_fetches=int(env.get("SLUICE_CODESET_MAX_FETCHES", base.max_concurrent_fetches)),
            max_concurrent_polls=int(env.get("SLUICE_CODESET_MAX_POLLS", base.max_concurrent_polls)),
            webhook_host=env.get("SLUICE_WEBHOOK_HOST", base.webhook_host),
            webhook_port=int(env.get("SLUICE_WEBHOOK_PORT", base.webhook_port)),
            limits=GitLimits.from_env(),
        )


def codeset_path(namespace: str, name: str | None = None) -> str:
    return resource_path(GROUP, VERSION, "codesets", namespace, name)


class CodesetTracker:
    def __init__(self, rt: Runtime, config: CodesetConfig):
        self.rt = rt
        self.config = config
        self.metrics = CodesetMetrics(rt.metrics.registry)
        self.git = Git(config.limits)
        self.snapshots = Snapshots(
            self.git,
            self._credentials_for,
            max_concurrent=config.max_concurrent_fetches,
            on_fetch=self.metrics.fetch,
        )
        self.poller = Poller(
            self.git,
            self._credentials_for,
            self._on_poll,
            jitter=config.jitter,
            max_concurrent=config.max_concurrent_polls,
            on_poll=self.metrics.poll,
        )
        self.webhooks = WebhookReceiver(
            self._webhook_target, self._webhook_token, self._refresh, self.metrics
        )
        self.specs: dict[Key, CodesetSpec] = {}
        self.bodies: dict[Key, dict[str, Any]] = {}
        self.written: dict[Key, dict[str, Any]] = {}
        self._requests_seen: dict[Key, str] = {}
        self._forced: dict[Key, str] = {}
        self._last: dict[Key, PollResult] = {}
        self._pending: dict[Key, PollResult] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._attempts: dict[Key, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.webhook_port >= 0:
            await self.webhooks.start(self.config.webhook_host, self.config.webhook_port)
            logger.info("codeset webhooks on port %s", self.webhooks.port)

    async def stop(self) -> None:
        await self.poller.close()
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        await self.webhooks.stop()
        await self.snapshots.close()

    # --- watch events ----------------------------------------------------------------------------

    async def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        if event_type == "DELETED" or meta.get("deletionTimestamp"):
            self.forget(key)
            return
        self.bodies[key] = dict(body)
        try:
            spec = parse_codeset(body)
        except InvalidCodeset as exc:
            self.poller.unsubscribe(key)
            self.specs.pop(key, None)
            generation = int(meta.get("generation") or 1)
            await self._write(key, {"observedGeneration": generation}, "stalled", INVALID_SPEC, str(exc))
            return
        previous = self.specs.get(key)
        self.specs[key] = spec
        requested = str((meta.get("annotations") or {}).get(REQUEST_ANNOTATION) or "")
        handled = str((body.get("status") or {}).get("lastHandledReconcileAt") or "")
        if requested and requested != handled and requested != self._requests_seen.get(key):
            self._requests_seen[key] = requested
            self._forced[key] = requested
            self.poller.subscribe(key, source_of(spec), spec.interval_seconds)
            self.poller.refresh(key)
            return
        if previous == spec:
            return
        self.poller.subscribe(key, source_of(spec), spec.interval_seconds)
        if previous is not None and source_of(previous) == source_of(spec):
            last = self._last.get(key)  # same repository, other settings: no new git call needed
            if last is not None:
                self._submit(key, last)
            else:
                self.poller.refresh(key)

    def forget(self, key: Key) -> None:
        self.poller.unsubscribe(key)
        self.specs.pop(key, None)
        self.bodies.pop(key, None)
        self.written.pop(key, None)
        self._requests_seen.pop(key, None)
        self._forced.pop(key, None)
        self._last.pop(key, None)
        self._pending.pop(key, None)
        self._attempts.pop(key, None)

    # --- poll results ----------------------------------------------------------------------------

    async def _on_poll(self, source: Source, keys: frozenset[Key], result: PollResult) -> None:
        for key in keys:
            self._submit(key, result)

    def _submit(self, key: Key, result: PollResult) -> None:
        self._last[key] = result
        self._pending[key] = result
        if key not in self._workers:
            task = asyncio.create_task(self._drain(key), name="codeset reconcile")
            self._workers[key] = task
            task.add_done_callback(lambda _t, k=key: self._workers.pop(k, None))  # type: ignore[misc]

    async def _drain(self, key: Key) -> None:
        while key in self._pending:
            result = self._pending.pop(key)
            try:
                await self._reconcile(key, result)
            except ApiError as exc:
                self._retry_later(key, result, exc)
            except Exception:
                logger.exception("codeset %s/%s: reconcile failed", *key)
            else:
                self._attempts.pop(key, None)

    def _retry_later(self, key: Key, result: PollResult, exc: ApiError) -> None:
        """The API failed beyond the client's own retries: try the same result again with backoff
        (the next poll may be an hour away), unless a newer result arrives first."""
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        delay = self.rt.config.backoff(attempt)
        logger.warning("codeset %s/%s: API error %s; retrying in %.1fs", *key, exc.status, delay)

        def again() -> None:
            if key in self.specs and self._last.get(key) is result and key not in self._pending:
                self._submit(key, result)

        asyncio.get_running_loop().call_later(delay, again)

    async def _reconcile(self, key: Key, result: PollResult) -> None:
        spec = self.specs.get(key)
        if spec is None:
            return
        status = self._status(key)
        if result.error is not None:
            error = result.error
            fields = {"observedGeneration": spec.generation}
            await self._write(key, fields, "stalled", error.reason, error.message, warn=True)
            return
        sha = str(result.sha)
        forced = self._forced.get(key)  # dropped once handled, so a failed attempt keeps it
        ready = cond.condition(status.get("conditions"), cond.READY) or {}
        if (
            forced is None
            and status.get("revision") == sha
            and status.get("observedGeneration") == spec.generation
            and status.get("contentDigest")
            and ready.get("reason") not in _RETRY_REASONS
        ):
            await self._write(key, {"lastFetchedAt": result.at}, None, "", "")
            return
        await self._handle_revision(key, spec, sha, result, forced, status)

    async def _handle_revision(
        self,
        key: Key,
        spec: CodesetSpec,
        sha: str,
        result: PollResult,
        forced: str | None,
        status: dict[str, Any],
    ) -> None:
        fields: dict[str, Any] = {"observedGeneration": spec.generation}
        if forced is not None:
            fields["lastHandledReconcileAt"] = forced
        outcome: SyncOutcome | None = None
        try:
            async with self.snapshots.open(source_of(spec), sha) as snapshot:
                digest = snapshot.digest(spec.ignore)
                if spec.sync_path is not None:
                    desired, errors, failed = await desired_workflows(snapshot, spec)
                    outcome = await apply_workflows(self.rt.client, spec, sha, desired, failed)
                    outcome.errors[:0] = errors
        except GitError as exc:
            self.metrics.git_errors.labels(operation="fetch", kind=exc.kind).inc()
            await self._write(key, fields, "stalled", exc.reason, exc.message, warn=True)
            return
        except ApiError:
            self.metrics.syncs.labels(namespace=spec.namespace, result="error").inc()
            raise
        if outcome is not None:
            self.metrics.syncs.labels(namespace=spec.namespace, result=outcome.result).inc()
            fields["syncedWorkflows"] = outcome.workflows
        triggered: TriggerOutcome | None = None
        if digest != status.get("contentDigest"):
            triggered = await trigger_runs(self.rt.client, spec, sha)
            if triggered.created:
                self.metrics.triggered_runs.labels(namespace=spec.namespace).inc(len(triggered.created))
        fields.update({"revision": sha, "lastFetchedAt": result.at, "contentDigest": digest})
        what = f"{spec.ref.name}@{sha}"
        if outcome is not None and outcome.errors:
            count = len(outcome.errors)
            message = f"{what}: {count} workflow file problem{'s' if count != 1 else ''}: " + "; ".join(
                outcome.errors
            )
            await self._write(key, fields, "stalled", INVALID_WORKFLOW, message, warn=True)
        else:
            synced = (
                f"; {len(outcome.workflows)} workflows synced from {spec.sync_path or '.'}" if outcome else ""
            )
            await self._write(key, fields, "ready", SUCCEEDED, f"tracking {what}{synced}")
        if forced is not None and self._forced.get(key) == forced:
            del self._forced[key]
        if status.get("revision") != sha:
            started = f"; started {len(triggered.created)} runs" if triggered and triggered.created else ""
            await self._event(key, "Normal", NEW_REVISION, f"fetched {what}{started}")

    # --- status and events -----------------------------------------------------------------------

    def _status(self, key: Key) -> dict[str, Any]:
        written = self.written.get(key)
        if written is not None:
            return written
        return dict((self.bodies.get(key) or {}).get("status") or {})

    async def _write(
        self,
        key: Key,
        fields: Mapping[str, Any],
        health: cond.Health | None,
        reason: str,
        message: str,
        *,
        warn: bool = False,
    ) -> None:
        """One merge patch of the status, only if it changes something."""
        current = self._status(key)
        desired: dict[str, Any] = dict(fields)
        spec = self.specs.get(key)
        path = webhook_path(*key) if spec is not None and spec.webhook_secret_name else None
        if path is not None:
            desired["webhookPath"] = path
        if health is not None:
            generation = int(desired.get("observedGeneration") or current.get("observedGeneration") or 1)
            desired["conditions"] = cond.kstatus_conditions(
                health,
                reason=reason,
                message=message,
                generation=generation,
                previous=current.get("conditions"),
            )
        if not cond.status_changed(current, desired):
            return
        patched = await self.rt.client.merge_patch(codeset_path(*key) + "/status", {"status": desired})
        if patched is None:
            return
        self.written[key] = {**current, **desired}
        old_reason = (cond.condition(current.get("conditions"), cond.READY) or {}).get("reason")
        if warn and old_reason != reason:
            await self._event(key, "Warning", reason, message)

    async def _event(self, key: Key, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        body = self.bodies.get(key) or {}
        stub = object_stub(CODESET, *key)
        # the last seen metadata too: the Event names the uid and resourceVersion it is about
        involved = {**stub, "metadata": {**(body.get("metadata") or {}), **stub["metadata"]}}
        await post_event(self.rt.client, involved, type_=type_, reason=reason, message=message)

    # --- credentials and webhooks ----------------------------------------------------------------

    async def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.rt.client.get(resource_path("", "v1", "secrets", namespace, name))

    async def _credentials_for(self, source: Source) -> Credentials | None:
        if source.secret_name is None or source.namespace is None:
            return None
        secret = await self._secret(source.namespace, source.secret_name)
        if secret is None:
            raise GitError(AUTHENTICATION_FAILED, "secret", f"Secret {source.secret_name} not found")
        credentials = Credentials.from_secret(secret)
        if credentials.empty:
            raise GitError(
                AUTHENTICATION_FAILED,
                "secret",
                f"Secret {source.secret_name} has no username+password, token or identity",
            )
        return credentials

    def _webhook_target(self, namespace: str, name: str) -> WebhookTarget | None:
        spec = self.specs.get((namespace, name))
        if spec is None or not spec.webhook_secret_name:
            return None
        return WebhookTarget(namespace, name, spec.webhook_secret_name, spec.ref)

    async def _webhook_token(self, namespace: str, secret_name: str) -> bytes | None:
        try:
            secret = await self._secret(namespace, secret_name)
        except ApiError:
            return None
        encoded = ((secret or {}).get("data") or {}).get("token")
        if not encoded:
            return None
        try:
            return base64.b64decode(str(encoded), validate=True).strip(b"\r\n") or None
        except (binascii.Error, ValueError):
            return None

    def _refresh(self, namespace: str, name: str) -> bool:
        return self.poller.refresh((namespace, name))
