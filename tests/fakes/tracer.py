"""A recording :class:`~vanta.application.ports.tracer.Tracer`.

Each finished span is kept with its name, attributes, parent span (spans nest per task, as
with OpenTelemetry's context) and the exception that left it, if any; the exception is never
swallowed. The only adapter is the no-op tracer; ``tests/contract/test_tracer_contract.py``
holds both to the same behaviour.
"""

from __future__ import annotations

import contextvars
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


class RecordingTracer:
    def __init__(self) -> None:
        self.spans: list[Span] = []  # finished spans, in the order they ended
        self._current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
            f"fake-span-{id(self)}", default=None)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        parent = self._current.get()
        s = Span(name, dict(attributes or {}), parent, time.perf_counter())
        if parent is not None:
            parent.children.append(s)
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

    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]
