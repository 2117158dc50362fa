"""Correlation ids, one log line and one audit event per request.

Audit events for requests are written in batches by a background task, so recording every GET
does not make each request wait for a database write. One flush writes up to ``max_batch``
events in one transaction: per event, a large batch costs about a third less than batches
of 200 (fewer statements and commits), and under load one flush per interval suffices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vanta.application import tracing
from vanta.application.ports.tracer import Tracer, trace_id_of
from vanta.application.ports.uow import UowFactory
from vanta.bootstrap.logging import bind_correlation_id, bind_trace_id, clear_context

log = logging.getLogger("vanta.api.requests")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
HEADER = b"x-request-id"


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_correlation_id() -> str:
    """``uuid.uuid4().hex`` (32 hex digits, a version 4 UUID), without building a UUID."""
    return "%032x" % (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET)


class AuditBatcher:
    def __init__(self, uow_factory: UowFactory, *, max_batch: int = 1000,
                 interval: float = 0.2) -> None:
        self._uow_factory = uow_factory
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100_000)
        self._max_batch = max_batch
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def record(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:  # never block a request on the audit trail; say so loudly
            log.error("request audit queue full; event dropped",
                      extra={"correlation_id": event.get("entity_id")})

    async def flush(self) -> int:
        batch: list[dict[str, Any]] = []
        while not self._queue.empty() and len(batch) < self._max_batch:
            batch.append(self._queue.get_nowait())
        if batch:
            async with self._uow_factory() as uow:
                await uow.audit.append_many(batch)
                await uow.commit()
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await self.flush():
                    pass
            except Exception:
                log.exception("request audit flush failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
        while await self.flush():
            pass


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, batcher: AuditBatcher) -> None:
        self.app = app
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        for name, value in scope.get("headers") or ():
            if name == HEADER:
                raw = value  # the last one, as dict(headers) would have it
        incoming = raw.decode("latin-1")
        cid = incoming if _VALID_ID.match(incoming) else new_correlation_id()
        bind_correlation_id(cid)
        scope.setdefault("state", {})["correlation_id"] = cid
        start = time.perf_counter()
        status = 500
        echo = (HEADER, cid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            tracer = tracing.current()
            if tracer.enabled:  # the request's span: the root of an order's trace
                await self._traced(tracer, scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self._finish(scope, cid, status, (time.perf_counter() - start) * 1000)
            clear_context()

    async def _traced(self, tracer: Tracer, scope: Scope, receive: Receive,
                      send: Send) -> None:
        parent = None
        for name, value in scope.get("headers") or ():
            if name == b"traceparent":
                parent = value.decode("latin-1")
        with tracer.span(f"{scope['method']} {scope.get('path', '')}",
                         {"http.method": scope["method"], "http.target": scope.get("path")},
                         parent=parent):
            bind_trace_id(trace_id_of(tracer.traceparent()))
            await self.app(scope, receive, send)

    def _finish(self, scope: Scope, cid: str, status: int, ms: float) -> None:
        path = scope.get("path", "")
        if path in ("/healthz", "/readyz", "/metrics"):
            return
        principal = (scope.get("state") or {}).get("principal")
        route = scope.get("route")
        template = getattr(route, "path", path)
        client = scope.get("client")  # as client_address decided it
        log.info("request", extra={"method": scope["method"], "path": path, "status": status,
                                   "duration_ms": round(ms, 1),
                                   "tenant_id": getattr(principal, "tenant_id", None),
                                   "subject": getattr(principal, "subject", None)})
        self.batcher.record({
            "entity": "request", "entity_id": cid, "action": f"{scope['method']} {template}",
            "actor": getattr(principal, "subject", None) or "anonymous",
            "tenant_id": getattr(principal, "tenant_id", None),
            "payload": {"path": path, "status": status, "duration_ms": round(ms, 1),
                        "ip": client[0] if client else None},
        })
