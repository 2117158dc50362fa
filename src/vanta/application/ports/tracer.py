"""A minimal tracing port: named spans around units of work, and the W3C ``traceparent`` that
carries a trace across processes (stored in the outbox row, sent in NATS headers and to the
follower). The default does nothing and costs nothing: ``enabled`` is False, no span is made
and :meth:`Tracer.traceparent` is None, so callers skip the propagation work entirely."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class Tracer(Protocol):
    @property
    def enabled(self) -> bool:
        """False when spans go nowhere (callers may skip building attributes)."""
        ...

    def span(self, name: str, attributes: Mapping[str, Any] | None = None, *,
             parent: str | None = None) -> AbstractContextManager[None]:
        """A span around the body; ``parent`` (a ``traceparent`` header value from another
        process) makes it a child of that remote span instead of the current one."""
        ...

    def traceparent(self) -> str | None:
        """The current span as a W3C ``traceparent`` header value; None outside a span or
        when tracing is off."""
        ...


class NoopTracer:
    enabled = False

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None, *,
             parent: str | None = None) -> Iterator[None]:
        yield

    def traceparent(self) -> str | None:
        return None


NOOP_TRACER = NoopTracer()


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a ``traceparent`` value (``00-<trace>-<span>-<flags>``)."""
    if traceparent is None or len(traceparent) < 35:
        return None
    return traceparent[3:35]
