"""A minimal tracing port: named spans around units of work. The default does nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class Tracer(Protocol):
    def span(self, name: str, attributes: Mapping[str, Any] | None = None
             ) -> AbstractContextManager[None]: ...


class NoopTracer:
    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        yield


NOOP_TRACER = NoopTracer()
