"""One attempt on the wire: a signed webhook POST, or an order to the follower's broker."""

from __future__ import annotations

from dataclasses import replace

from vanta.application.bridged import submit_to_broker
from vanta.application.dispatch_steps import Prepared
from vanta.application.ports.delivery import SendResult, WebhookSender
from vanta.application.ports.metrics import Metrics
from vanta.application.ports.tracer import Tracer


async def _send(p: Prepared, sender: WebhookSender, metrics: Metrics) -> SendResult:
    if p.gateway is not None:
        assert p.broker_order is not None
        return await submit_to_broker(p.gateway, p.broker_order, p.price, metrics)
    return await sender.send(p.url, p.headers, p.body)


async def send_one(p: Prepared, sender: WebhookSender, metrics: Metrics,
                   tracer: Tracer) -> SendResult:
    """Send ``p``; with tracing on, as a span of the order's trace (the follower gets its
    traceparent)."""
    if p.traceparent is None:  # tracing off: nothing more to do
        return await _send(p, sender, metrics)
    child = p.child
    attrs = {"fo_id": child.fo_id if child else None, "attempt": p.attempt_no,
             "follower_id": child.follower_id if child else None}
    name = "broker.submit" if p.gateway is not None else "webhook.deliver"
    with tracer.span(name, attrs, parent=p.traceparent):
        tp = tracer.traceparent()
        if tp is not None and p.gateway is None:
            p = replace(p, headers={**p.headers, "traceparent": tp})
        return await _send(p, sender, metrics)
