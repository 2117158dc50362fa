"""A recording :class:`~vanta.application.ports.tracer.Tracer`.

Each finished span is kept with its name, attributes, parent span (spans nest per task, as
with OpenTelemetry's context) and the exception that left it, if any; the exception is never
swallowed. Like OpenTelemetry, every span has a trace id (its parent's, the remote parent's
given as a ``traceparent``, or a new one) and a span id, and ``traceparent()`` renders the
current span in the W3C form. ``tests/contract/test_tracer_contract.py`` holds it, the no-op
tracer and the OpenTelemetry adapter to the same behaviour.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordingTracer", "Span"]


@dataclass
class Span:
    name: str
    attributes: dict[str, Any]
    parent: Span | None
    started: float
    ended: float | None = None
    error: BaseException | None = None
    children: list[Span] = field(default_factory=list)
    trace_id: str = ""
    span_id: str = ""
    remote_parent: str | None = None  # the traceparent it was started under


class RecordingTracer:
    enabled = True

    def __init__(self) -> None:
        self.spans: list[Span] = []  # finished spans, in the order they ended
        self._current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
            f"fake-span-{id(self)}", default=None)
        self._ids = itertools.count(1)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None, *,
             parent: str | None = None) -> Iterator[None]:
        local = None if parent else self._current.get()
        s = Span(name, dict(attributes or {}), local, time.perf_counter(),
                 span_id=f"{next(self._ids):016x}", remote_parent=parent)
        if parent:
            s.trace_id = parent[3:35]
        elif local is not None:
            s.trace_id = local.trace_id
            local.children.append(s)
        else:
            s.trace_id = f"{next(self._ids):032x}"
        token = self._current.set(s)
        try:
            yield
        except BaseException as e:
            s.error = e
            raise
        finally:
            self._current.reset(token)
            s.ended = time.perf_counter()
            self.spans.append(s)

    def traceparent(self) -> str | None:
        s = self._current.get()
        return None if s is None else f"00-{s.trace_id}-{s.span_id}-01"

    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]
