"""One attempt on the wire (a signed webhook POST, or an order to the follower's broker), and
the grouping of a batch's answers for recording."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

from vanta.application.bridged import submit_to_broker
from vanta.application.clock import Clock
from vanta.application.dispatch_steps import Prepared, signed_at
from vanta.application.leg_runner import send_legs
from vanta.application.ports.delivery import SendResult, WebhookSender
from vanta.application.ports.metrics import Metrics
from vanta.application.ports.tracer import Tracer
from vanta.application.ports.uow import UowFactory


async def _send(p: Prepared, sender: WebhookSender, metrics: Metrics,
                clock: Clock, uow_factory: UowFactory) -> SendResult:
    if p.gateway is not None and p.legged:  # a cross-rail child: its ready legs go out
        assert p.child is not None
        return await send_legs(uow_factory, p.gateway, p.child, clock)
    if p.gateway is not None:
        assert p.broker_order is not None
        return await submit_to_broker(p.gateway, p.broker_order, p.price, metrics)
    if p.template is None:
        return await sender.send(p.url, p.headers, p.body)
    # signed as it leaves, once it holds a send slot: the timestamp is the send's own
    headers, body = signed_at(p, clock())
    return await sender.send(p.url, headers, body)


async def send_one(p: Prepared, sender: WebhookSender, metrics: Metrics,
                   tracer: Tracer, clock: Clock, uow_factory: UowFactory) -> SendResult:
    """Send ``p``; with tracing on, as a span of the order's trace (the follower gets its
    traceparent)."""
    if p.traceparent is None:  # tracing off: nothing more to do
        return await _send(p, sender, metrics, clock, uow_factory)
    child = p.child
    attrs = {"fo_id": child.fo_id if child else None, "attempt": p.attempt_no,
             "follower_id": child.follower_id if child else None}
    name = "broker.submit" if p.gateway is not None else "webhook.deliver"
    with tracer.span(name, attrs, parent=p.traceparent):
        tp = tracer.traceparent()
        if tp is not None and p.gateway is None:
            p = replace(p, headers={**p.headers, "traceparent": tp})
        return await _send(p, sender, metrics, clock, uow_factory)



async def answer_groups(tasks: Iterable[asyncio.Task[SendResult]], quiet_s: float | None
                        ) -> AsyncIterator[list[asyncio.Task[SendResult]]]:
    """The finished sends of a batch, in groups to record together: all of them at once if
    they end close together; while some are still out, what has ended once no other answer
    came for ``quiet_s`` (the rest are slow: they must not hold back the recording, and so
    the retry timing, of the others), and at least every ``4 * quiet_s`` while answers keep
    trickling in. ``quiet_s=None``: one group, when every send has ended."""
    ended: list[asyncio.Task[SendResult]] = []
    news = asyncio.Event()

    def on_end(t: asyncio.Task[SendResult]) -> None:
        ended.append(t)
        news.set()
    left = 0
    for t in tasks:
        t.add_done_callback(on_end)
        left += 1
    loop = asyncio.get_running_loop()
    group: list[asyncio.Task[SendResult]] = []
    since = loop.time()
    while left:
        if not ended:
            news.clear()
            # a wake-up lost to the timeout loses nothing: the answers are in ``ended``
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), quiet_s)
        quiet = not ended
        group += ended
        left -= len(ended)
        ended.clear()
        if not group:
            continue
        if left and not quiet and (quiet_s is None or loop.time() - since < 4 * quiet_s):
            continue
        yield group
        group, since = [], loop.time()
