"""The hops of an order's trace between processes: the outbox relay (a span, and the
``traceparent`` it puts in the bus message's headers) and the dispatch consumer (a span for the
message received). With tracing off, or a row without a ``traceparent``, each is one
dictionary look-up and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from vanta.application import tracing

__all__ = ["received", "relay_span"]


class _Hop:
    """``async with relay_span(payload) as headers``: the headers to publish with."""

    def __init__(self, traceparent: str | None, fo_id: Any = None) -> None:
        self._tp = traceparent
        self._fo_id = fo_id
        self._span: AbstractContextManager[None] | None = None

    async def __aenter__(self) -> Mapping[str, str] | None:
        if self._tp is None:
            return None
        tracer = tracing.current()
        if not tracer.enabled:  # carried on unchanged, so a traced consumer still joins
            return {"traceparent": self._tp}
        self._span = tracer.span("outbox.relay", {"fo_id": self._fo_id}, parent=self._tp)
        self._span.__enter__()
        return {"traceparent": tracer.traceparent() or self._tp}

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._span is not None:
            self._span.__exit__(et, e, tb)


_NO_HOP = _Hop(None)


def relay_span(payload: Mapping[str, Any]) -> _Hop:
    tp = payload.get("traceparent")
    return _NO_HOP if tp is None else _Hop(tp, payload.get("fo_id"))


def received(headers: Mapping[str, str] | None, row_id: int) -> None:
    """A dispatch message taken from the bus: its span in the order's trace."""
    tp = headers.get("traceparent") if headers else None
    if tp is None:
        return
    tracer = tracing.current()
    if tracer.enabled:
        with tracer.span("mirror.dispatch.receive", {"outbox_id": row_id}, parent=tp):
            pass
