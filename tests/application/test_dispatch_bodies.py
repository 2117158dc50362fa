"""Dispatch bodies: rendered once when the order is expanded and stored with the child's
outbox row; each attempt adds its own send time, attempt number and last error, and is
signed as it leaves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.application.conftest import World
from tests.fakes.sender import Answer, FakeWebhookSender
from vanta.application.clock import iso
from vanta.application.followers import parse_whsec
from vanta.application.payloads import attempt_body
from vanta.application.ports.delivery import SendResult
from vanta.domain.webhook_signing import sign_standard, sign_vanta

_LEASE = timedelta(seconds=30)
_ONE_S = timedelta(seconds=1)
META = {"reason_vector": ["insider buy"], "conviction": {"score": 0.87, "band": "A"},
        "provenance": {"collector": "c.py"}, "dag_id": "DAG-1", "meta": {"desk": "x"}}


async def _stored(w: World) -> dict[str, str]:
    """Child id -> the body stored with its outbox row."""
    async with w.uow() as u:
        rows = await u.outbox.claim_due("mirror.dispatch", w.clock(), 100, _LEASE)
        await u.outbox.release_many([r.id for r in rows])  # due again for the dispatcher
        await u.commit()
    return {r.payload["fo_id"]: r.payload["body"] for r in rows}


async def test_each_attempt_sends_the_stored_body_with_its_own_attempt_fields(
        world: World) -> None:
    fid = await world.follower(scale="0.25")
    sub = await world.submit(id="M-1", qty="10", **META)
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    stored = await _stored(world)
    assert set(stored) == {fo}
    fixed = json.loads(stored[fo])
    assert "ts" not in fixed and "dispatch_attempts" not in fixed["audit"]
    world.sender.script("https://hooks.example/0", Answer(503), Answer())
    await world.drain()
    world.clock.advance(1)
    await world.drain()
    first, second = (json.loads(r.body) for r in world.sender.requests)
    assert first == {
        "ts": first["ts"], "id": fo, "follower_id": fid, "vault_id": "VA", "symbol": "AAPL",
        "venue": sub.order.venue, "side": "buy", "qty": 2, "time_in_force": "day",
        "reason_vector": ["insider buy"], "conviction": {"score": 0.87, "band": "A"},
        "meta": {"manager_order_id": "M-1", "mo_id": sub.order.mo_id, "scale": 0.25,
                 "max_pos_usd": None, "kill_switch": False, "cap_applied": False,
                 "source": {"desk": "x"}},
        "provenance": {"collector": "c.py"},
        "audit": {"dag_id": fixed["audit"]["dag_id"], "upstream_dag_id": "DAG-1",
                  "dispatch_attempts": 1, "last_error": None, "state": "sent"}}
    assert next(iter(first)) == "ts"  # the time first, as in the published example
    assert second["audit"] == {**first["audit"], "dispatch_attempts": 2,
                               "last_error": "HTTP 503"}
    assert (first["ts"], second["ts"]) == (iso(world.clock.now - _ONE_S), iso(world.clock.now))
    # apart from the attempt's own fields, the two attempts sent the same body
    for b in (first, second):
        del b["ts"], b["audit"]["dispatch_attempts"], b["audit"]["last_error"]
    assert first == second


@dataclass
class _SlowSender(FakeWebhookSender):
    """Every send takes three seconds of the world's clock."""

    world: Any = None

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        result = await super().send(url, headers, body)
        self.world.clock.advance(3)
        return result


async def test_the_signature_is_made_when_the_attempt_is_sent(world: World) -> None:
    sender = _SlowSender(world=world)
    world.dispatcher.sender = sender
    world.dispatcher.config.concurrency = 1  # one send at a time: the second one waits
    fids = [await world.follower() for _ in range(2)]
    await world.submit()
    start = world.clock.now
    assert await world.dispatcher.run_once() == 2
    stamps = []
    for req in sender.requests:
        body = json.loads(req.body)
        ts = int(req.headers["webhook-timestamp"])
        key = parse_whsec(world.secrets_of[body["follower_id"]])
        assert req.headers["webhook-signature"] == sign_standard(key, body["id"], ts, req.body)
        assert req.headers["X-Vanta-Signature"] == sign_vanta(key, ts, req.body)
        assert body["ts"] == iso(start.fromtimestamp(ts, start.tzinfo))
        stamps.append(ts - int(start.timestamp()))
    assert sorted(stamps) == [0, 3] and {json.loads(r.body)["follower_id"]
                                         for r in sender.requests} == set(fids)


async def test_a_row_without_a_stored_body_is_rendered_from_its_order(world: World) -> None:
    await world.follower()
    sub = await world.submit(**META)
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    stored = (await _stored(world))[fo]
    # the row as a redelivery of a lost row or a reconciliation fix-up writes it: no body
    world.db.store.tables["outbox"].clear()
    async with world.uow() as u:
        await u.outbox.add_many("mirror.dispatch", [(fo, {"fo_id": fo})], world.clock())
        await u.commit()
    await world.drain()
    [req] = world.sender.requests
    sent = json.loads(req.body)
    assert sent == json.loads(attempt_body(stored.encode(), ts=sent["ts"], attempt_no=1,
                                           last_error=None))


def test_attempt_body_only_takes_a_stored_body() -> None:
    fixed = b'{"id":"fo","audit":{"dag_id":"D","upstream_dag_id":null}}'
    assert json.loads(attempt_body(fixed, ts="T", attempt_no=3, last_error='say "no"')) == {
        "ts": "T", "id": "fo", "audit": {"dag_id": "D", "upstream_dag_id": None,
                                         "dispatch_attempts": 3, "last_error": 'say "no"',
                                         "state": "sent"}}
    for bad in (b"", b"[1]", b'{"id":"fo"}'):
        try:
            attempt_body(bad, ts="T", attempt_no=1, last_error=None)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
