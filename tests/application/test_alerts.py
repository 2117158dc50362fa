"""Operator alerts over the in-memory unit of work, a fake clock, the scripted webhook sender
and the fake mailer (the one mail port): queued in the dispatcher's transaction, sent later by
``AlertDelivery``; de-duplicated, rate-limited, retried per channel."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.application.conftest import World
from tests.fakes.mailer import FakeMailer
from tests.fakes.sender import Answer, FakeWebhookSender
from vanta.application.alert_channels import add_channel, remove_channel, send_test_alert
from vanta.application.alerts import AlertDelivery, raise_alert
from vanta.application.bridged import confirm_fills
from vanta.application.ports.brokers import OrderNotFound
from vanta.domain.alerts import AlertPolicy
from vanta.domain.errors import Conflict
from vanta.receiving import verify

OPS = "https://ops.example/alerts"
ALERTS_FROM = "alerts@vanta.test"


def _delivery(w: World, mail: FakeMailer | None = None,
              ops: FakeWebhookSender | None = None, **kw: Any) -> AlertDelivery:
    return AlertDelivery(uow_factory=w.db.uow, webhooks=ops or FakeWebhookSender(),
                         secrets=w.secrets, mail=mail, mail_from=ALERTS_FROM, clock=w.clock,
                         **kw)


def _sent(mail: FakeMailer) -> list[tuple[str, str, str]]:
    """(to, subject, text) of what the fake mailer was given."""
    return [(m.to, m.subject, m.text) for m in mail.sent]


async def _webhook(w: World, tenant: str = "tnt_a", **raw: Any) -> tuple[str, str]:
    row, secret = await add_channel(w.uow(), w.secrets, tenant_id=tenant,
                                    raw={"kind": "webhook", "url": OPS, **raw}, actor="ops",
                                    vetter=None, email_enabled=True, clock=w.clock)
    assert secret is not None
    return row.channel_id, secret


async def _email(w: World, **raw: Any) -> str:
    row, secret = await add_channel(w.uow(), w.secrets, tenant_id="tnt_a",
                                    raw={"kind": "email", "email": "oncall@example.com", **raw},
                                    actor="ops", vetter=None, email_enabled=True,
                                    clock=w.clock)
    assert secret is None
    return row.channel_id


async def _states(w: World) -> list[tuple[str, str, str]]:
    out = []
    for tenant in ("tnt_a", "tnt_b"):
        async with w.uow() as u:
            rows = u.alerts._select(lambda r, t=tenant: r["tenant_id"] == t,  # type: ignore[attr-defined]
                                    order=lambda r: r["created_at"])
        out += [(r["kind"], r["subject"], r["state"]) for r in rows]
    return out


async def _raise(w: World, kind: str = "dead_letter", subject: str = "f1",
                 tenant: str = "tnt_a") -> str:
    async with w.uow() as u:
        aid = await raise_alert(u, tenant_id=tenant, kind=kind, subject=subject,
                                detail={"follower_id": subject}, now=w.clock())
        await u.commit()
    return aid


async def test_a_dead_letter_is_queued_with_it_and_sent_signed_and_by_mail(world: World) -> None:
    _, secret = await _webhook(world)
    await _email(world)
    fid = await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    world.sender.script("https://hooks.example/0", Answer(500))
    for step in (0, 1, 5):  # three attempts with the (1 s, 5 s) schedule: dead-lettered
        world.clock.advance(step)
        await world.drain()
    assert await _states(world) == [("dead_letter", fid, "pending")]
    ops, mail = FakeWebhookSender(), FakeMailer()
    assert await _delivery(world, mail, ops).run_once() == 1
    [req] = ops.sent_to(OPS)
    verify(req.headers, req.body, secret, require="both",
           now=world.clock.now.timestamp())
    body = json.loads(req.body)
    fo = sub.expansion.children[0].fo_id
    assert (body["kind"], body["subject"], body["detail"]["fo_id"]) == ("dead_letter", fid, fo)
    assert body["detail"]["error"] == "HTTP 500" and req.headers["X-Vanta-Event"] == "alert"
    [(to, subject, text)] = _sent(mail)
    assert to == "oncall@example.com" and fid in subject and f"fo_id: {fo}" in text
    # from the alerts' own address, kept with the tenant it was sent for
    assert (mail.sent[0].sender, mail.sent[0].tenant_id) == (ALERTS_FROM, "tnt_a")
    assert await _states(world) == [("dead_letter", fid, "sent")]


async def test_duplicates_and_floods_are_held_back_and_counted_in_the_next_alert(
        world: World) -> None:
    await _email(world)
    mail = FakeMailer()
    d = _delivery(world, mail, policy=AlertPolicy(dedupe_window=timedelta(minutes=10),
                                                  window=timedelta(hours=1), per_kind=2,
                                                  per_subject=5))
    for subject in ("f1", "f1", "f2", "f3"):
        await _raise(world, subject=subject)
        world.clock.advance(1)  # queued one after the other
    await d.run_once()
    assert await _states(world) == [("dead_letter", "f1", "sent"),
                                    ("dead_letter", "f1", "suppressed"),
                                    ("dead_letter", "f2", "sent"),
                                    ("dead_letter", "f3", "suppressed")]
    assert [s for _, s, _ in _sent(mail)] == [
        "[vanta] a child order was dead-lettered after its last retry: f1",
        "[vanta] a child order was dead-lettered after its last retry: f2 "
        "(+1 similar held back)"]  # the second f1
    world.clock.advance(3600)  # the window passed: the next one says what was held back
    await _raise(world, subject="f4")
    await d.run_once()
    assert mail.sent[-1].subject.endswith("f4 (+1 similar held back)")  # f3


async def test_a_failing_channel_is_retried_alone_then_given_up(world: World) -> None:
    await _webhook(world)
    await _email(world)
    ops, mail = FakeWebhookSender(), FakeMailer()
    ops.script(OPS, Answer(503))
    d = _delivery(world, mail, ops, retry_delays=(10.0, 60.0))
    await _raise(world)
    await d.run_once()
    assert len(mail.sent) == 1 and len(ops.sent_to(OPS)) == 1
    assert await _states(world) == [("dead_letter", "f1", "pending")]
    assert await d.run_once() == 0, "not before its retry time"
    world.clock.advance(10)
    await d.run_once()
    world.clock.advance(60)
    await d.run_once()
    assert len(mail.sent) == 1, "the channel that took it is not sent it again"
    assert len(ops.sent_to(OPS)) == 3
    # the mail got through: the alert counts as sent, with the webhook's error kept
    async with world.uow() as u:
        [a] = u.alerts._select()  # type: ignore[attr-defined]
    assert a["state"] == "sent" and a["attempts"] == 3
    assert sorted(a["outcome"].values()) == ["HTTP 503", "ok"]


async def test_all_channels_failing_ends_failed_and_no_channel_ends_unrouted(
        world: World) -> None:
    await _raise(world, tenant="tnt_b")  # tenant B has no channel
    await _email(world)
    mail = FakeMailer()
    mail.fail_next()  # MailNotSent, as from a server that is away
    d = _delivery(world, mail, retry_delays=())
    await _raise(world)
    await d.run_once()
    assert await _states(world) == [("dead_letter", "f1", "failed"),
                                    ("dead_letter", "f1", "unrouted")]
    async with world.uow() as u:
        [a] = u.alerts._select(lambda r: r["state"] == "failed")  # type: ignore[attr-defined]
    assert list(a["outcome"].values()) == ["email not sent: fake: server away"]
    assert mail.sent == []


async def test_email_needs_smtp_and_a_server_without_it_says_so(world: World) -> None:
    with pytest.raises(Conflict) as e:
        await add_channel(world.uow(), world.secrets, tenant_id="tnt_a",
                          raw={"kind": "email", "email": "a@example.com"}, actor="ops",
                          vetter=None, email_enabled=False)
    assert e.value.code == "email_not_configured"
    await _email(world)  # configured earlier, then SMTP was removed from the settings
    await _raise(world)
    await _delivery(world, mail=None, retry_delays=()).run_once()
    async with world.uow() as u:
        [a] = u.alerts._select()  # type: ignore[attr-defined]
    assert a["state"] == "failed" and "VANTA_SMTP_HOST" in next(iter(a["outcome"].values()))


async def test_a_subject_that_would_add_a_header_is_refused_not_sent(world: World) -> None:
    await _email(world)
    mail = FakeMailer()
    await _raise(world, subject="f1\r\nBcc: evil@example.com")
    await _delivery(world, mail, retry_delays=()).run_once()
    async with world.uow() as u:
        [a] = u.alerts._select()  # type: ignore[attr-defined]
    assert mail.sent == [] and a["state"] == "failed"
    assert list(a["outcome"].values()) == ["email not sent: a header is one line"]


async def test_a_channel_receives_only_the_kinds_it_asked_for(world: World) -> None:
    await _email(world, kinds=["broker_lost_order"])
    mail = FakeMailer()
    await _raise(world, kind="dead_letter")
    world.clock.advance(1)
    await _raise(world, kind="broker_lost_order")
    await _delivery(world, mail).run_once()
    assert [m.subject.split(":")[0] for m in mail.sent] == [
        "[vanta] a broker has no record of an order it had accepted"]


async def test_a_test_alert_reaches_its_channel_even_outside_its_kinds(world: World) -> None:
    cid = await _email(world, kinds=["dead_letter"])
    await _webhook(world)
    ops, mail = FakeWebhookSender(), FakeMailer()
    await send_test_alert(world.uow(), tenant_id="tnt_a", channel_id=cid, actor="ops",
                          clock=world.clock)
    await _delivery(world, mail, ops).run_once()
    assert len(mail.sent) == 1 and ops.requests == []


async def test_a_claim_left_by_a_crashed_worker_lapses_and_is_sent(world: World) -> None:
    await _email(world)
    mail = FakeMailer()
    await _raise(world)
    async with world.uow() as u:
        [a] = await u.alerts.due(world.clock(), 10)
        assert await u.alerts.update(a.alert_id, expect_state="pending", state="sending",
                                     next_at=world.clock() + timedelta(minutes=5))
        await u.commit()
    d = _delivery(world, mail)
    assert await d.run_once() == 0
    world.clock.advance(300)
    assert await d.run_once() == 1 and len(mail.sent) == 1


async def test_channel_secrets_live_in_the_store_and_changes_are_audited(world: World) -> None:
    cid, secret = await _webhook(world)
    async with world.uow() as u:
        [ch] = await u.alerts.channels("tnt_a")
        events = [e.action for e in await u.audit.for_entity("tnt_a", cid)]
    assert ch.secret_ref is not None and secret not in json.dumps(ch.secret_ref)
    assert world.secrets.get(ch.secret_ref)  # held by reference, not in the row
    assert events == ["alert_channel_added"]
    await remove_channel(world.uow(), world.secrets, tenant_id="tnt_a", channel_id=cid,
                         actor="ops")
    with pytest.raises(KeyError):
        world.secrets.get(ch.secret_ref)
    async with world.uow() as u:
        assert [e.action for e in await u.audit.for_entity("tnt_a", cid)] == [
            "alert_channel_added", "alert_channel_removed"]


async def test_a_removed_channel_is_dropped_and_a_missing_key_is_a_channel_error(
        world: World) -> None:
    cid, _ = await _webhook(world)
    await _email(world)
    ops, mail = FakeWebhookSender(), FakeMailer()
    mail.fail_next()  # the first attempt's mail is refused
    d = _delivery(world, mail, ops, retry_delays=(10.0, 10.0))
    async with world.uow() as u:
        [ch] = [c for c in await u.alerts.channels("tnt_a") if c.channel_id == cid]
    world.secrets.delete(ch.secret_ref or "")  # the key vanished from the store
    await _raise(world)
    await d.run_once()
    async with world.uow() as u:
        [a] = u.alerts._select()  # type: ignore[attr-defined]
    assert a["state"] == "pending" and a["outcome"][cid] == "not sent: SecretNotFound"
    assert ops.requests == []
    await remove_channel(world.uow(), world.secrets, tenant_id="tnt_a", channel_id=cid,
                         actor="ops")
    world.clock.advance(10)
    await d.run_once()
    async with world.uow() as u:
        [a] = u.alerts._select()  # type: ignore[attr-defined]
    assert a["state"] == "sent" and list(a["outcome"].values()) == ["ok"]


class _LostVenue:
    """A venue that has forgotten every order it accepted."""

    def for_follower(self, follower: object) -> _LostVenue:
        return self

    async def order_report(self, ref: str) -> object:
        raise OrderNotFound(ref)

    async def close(self) -> None:
        return None


async def test_an_order_the_broker_lost_is_alerted_with_the_child(world: World) -> None:
    await _email(world)
    fid = await world.follower(webhook=None,
                               bridged={"broker": "paper", "credentials": {"cash": "1000"}})
    sub = await world.submit()
    assert sub.expansion is not None
    fo = sub.expansion.children[0].fo_id
    async with world.uow() as u:  # the venue had acknowledged it
        assert await u.child_orders.update(fo, expect_state="pending", state="ack",
                                           broker_order_ref="venue-1")
        await u.commit()
    await confirm_fills(world.db.uow, _LostVenue(), clock=world.clock)  # type: ignore[arg-type]
    assert (await world.child(fo)).state == "failed"
    mail = FakeMailer()
    await _delivery(world, mail).run_once()
    [(_, subject, text)] = _sent(mail)
    assert subject.startswith("[vanta] a broker has no record of an order it had accepted")
    assert fid in subject and f"fo_id: {fo}" in text
