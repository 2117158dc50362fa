"""The tracer contract (:class:`~vanta.application.ports.tracer.Tracer`), run on the
recording fake (``tests/fakes/tracer.py``) and the no-op default: a span is a context manager
that runs its body once, nests, and lets every exception through unchanged."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.tracer import RecordingTracer
from vanta.application.ports.tracer import NOOP_TRACER, Tracer


@pytest.fixture(params=["fake", "noop"])
def tracer(request: pytest.FixtureRequest) -> Tracer:
    return RecordingTracer() if request.param == "fake" else NOOP_TRACER


def test_a_span_runs_its_body_once(tracer: Tracer) -> None:
    ran = []
    with tracer.span("dispatch.batch", {"rows": 3}):
        ran.append(1)
    with tracer.span("no.attributes"):
        ran.append(2)
    assert ran == [1, 2]


def test_spans_nest_and_exceptions_pass_through(tracer: Tracer) -> None:
    error = ValueError("boom")
    with pytest.raises(ValueError) as e, tracer.span("outer"), tracer.span("inner", {"k": "v"}):
        raise error
    assert e.value is error


async def test_spans_work_across_awaits_and_tasks(tracer: Tracer) -> None:
    async def job(n: int) -> int:
        with tracer.span("job", {"n": n}):
            await asyncio.sleep(0)
            return n

    with tracer.span("batch"):
        assert await asyncio.gather(*(job(i) for i in range(3))) == [0, 1, 2]


async def test_the_fake_records_names_attributes_parents_and_errors() -> None:
    t = RecordingTracer()

    async def job(n: int) -> None:
        with t.span("job", {"n": n}):
            await asyncio.sleep(0)

    with t.span("batch"):
        await asyncio.gather(job(1), job(2))
    with pytest.raises(KeyError), t.span("failing"):
        raise KeyError("x")
    assert t.names() == ["job", "job", "batch", "failing"]
    [batch] = t.named("batch")
    assert sorted(s.attributes["n"] for s in batch.children) == [1, 2]
    assert all(s.parent is batch for s in t.named("job"))
    assert isinstance(t.named("failing")[0].error, KeyError) and batch.error is None
