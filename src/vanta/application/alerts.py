"""Alerts that reach a person. ``raise_alert`` queues one in the caller's transaction (one row
insert: the dispatch path never waits on a mail server or an operator's URL); the scheduler's
``AlertDelivery.run_once`` sends what is queued to each of the tenant's channels, after the
de-duplication and rate limits of :mod:`vanta.domain.alerts`.

Webhook channels are signed exactly like follower webhooks (``X-Vanta-*`` and Standard
Webhooks headers, ``webhook-id`` = the alert id) and go through the same SSRF-guarded sender;
email channels through the one :class:`~vanta.application.ports.mailer.Mailer` port, from
the alerts' own sender address. A channel that fails is tried again (``retry_delays``); the
ones that succeeded are not."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.alerts import AlertChannelRecord, AlertRecord
from vanta.application.ports.delivery import WebhookSender
from vanta.application.ports.mailer import Mailer, OutgoingMail
from vanta.application.ports.secrets import SecretReader
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.domain.alerts import AlertKind, AlertPolicy, SentAlert, Verdict, decide, summary
from vanta.domain.ids import new_id
from vanta.domain.webhook_signing import signature_headers

__all__ = ["AlertDelivery", "alert_body", "alert_row", "raise_alert"]
log = logging.getLogger("vanta.alerts")
OK = "ok"


def alert_row(*, tenant_id: str, kind: str, subject: str, detail: Mapping[str, Any],
              now: datetime) -> dict[str, Any]:
    """A new queued alert, for ``uow.alerts.add_many``."""
    return {"alert_id": new_id(), "tenant_id": tenant_id, "kind": kind,
            "subject": subject[:255], "detail": dict(detail), "state": "pending",
            "created_at": now, "attempts": 0}


async def raise_alert(uow: UnitOfWork, *, tenant_id: str, kind: str, subject: str,
                      detail: Mapping[str, Any], now: datetime) -> str:
    """Queue an alert inside the caller's unit of work (committed with it); its id."""
    row = alert_row(tenant_id=tenant_id, kind=kind, subject=subject, detail=detail, now=now)
    await uow.alerts.add_many([row])
    return str(row["alert_id"])


def alert_body(a: AlertRecord, held_back: int) -> dict[str, Any]:
    """What a webhook channel receives (and what an email lists)."""
    return {"type": "vanta.alert", "alert_id": a.alert_id, "tenant_id": a.tenant_id,
            "kind": a.kind, "subject": a.subject,
            "summary": summary(a.kind, a.subject, held_back), "detail": a.detail,
            "raised_at": a.created_at.isoformat(), "held_back": held_back}


def _email_text(body: Mapping[str, Any]) -> str:
    lines = [body["summary"], ""]
    lines += [f"{k}: {v}" for k, v in sorted(body["detail"].items())]
    lines += ["", f"alert id: {body['alert_id']}", f"raised at: {body['raised_at']}"]
    return "\n".join(lines) + "\n"


@dataclass
class AlertDelivery:
    uow_factory: UowFactory
    webhooks: WebhookSender  # the follower webhooks' sender: same SSRF policy
    secrets: SecretReader
    # None: no SMTP configured, email channels fail (the local outbox is not used for
    # alerts: a mail no one is sent must not count as an operator reached)
    mail: Mailer | None = None
    mail_from: str | None = None  # the alerts' From (VANTA_SMTP_FROM); None: the mailer's
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    clock: Clock = utcnow
    retry_delays: Sequence[float] = (10.0, 60.0, 300.0)
    # A claim a crashed worker left lapses after ``claim_for``. Alerts are sent one after the
    # other (the gate reads what went out before), so a batch's worst case, every channel
    # at its timeout, must fit in the claim: 10 x (5 s webhook + 10 s SMTP) < 5 min.
    claim_for: timedelta = timedelta(minutes=5)
    batch: int = 10

    async def run_once(self) -> int:
        """Send what is due; returns how many alerts were handled."""
        now = self.clock()
        claimed: list[AlertRecord] = []
        async with self.uow_factory() as uow:
            for a in await uow.alerts.due(now, self.batch):
                if await uow.alerts.update(a.alert_id, expect_state=a.state, state="sending",
                                           next_at=now + self.claim_for):
                    claimed.append(a)
            await uow.commit()
        for a in claimed:
            try:
                await self._handle(a)
            except Exception:  # the claim lapses and the alert is tried again
                log.exception("alert delivery failed", extra={"alert_id": a.alert_id})
        return len(claimed)

    async def _handle(self, a: AlertRecord) -> None:
        now = self.clock()
        async with self.uow_factory() as uow:
            if a.attempts == 0:  # a retry was already let through
                verdict = await self._verdict(uow, a, now)
                if verdict is not Verdict.SEND:
                    await uow.alerts.update(a.alert_id, expect_state="sending",
                                            state="suppressed", next_at=None,
                                            outcome={"held_back": verdict.value})
                    await uow.commit()
                    return
            channels = [c for c in await uow.alerts.channels(a.tenant_id) if c.wants(a.kind)
                        or c.channel_id == a.detail.get("channel_id") == a.subject]
            if a.kind == AlertKind.TEST:  # a test goes to the channel it was asked for
                channels = [c for c in channels if c.channel_id == a.subject]
            held = await uow.alerts.held_back(a.tenant_id, a.kind, a.created_at)
        before = dict(a.outcome or {}) if a.attempts else {}
        # a channel removed since the last attempt is neither tried nor counted
        results = {c.channel_id: before.get(c.channel_id, "") for c in channels}
        body = alert_body(a, held)
        for ch in channels:
            if results[ch.channel_id] != OK:
                try:
                    results[ch.channel_id] = await self._send(ch, a, body, now)
                except Exception as e:  # e.g. the secret store is away: tried again
                    log.exception("alert channel raised", extra={"alert_id": a.alert_id})
                    results[ch.channel_id] = f"not sent: {type(e).__name__}"
        await self._settle(a, results, now)

    async def _verdict(self, uow: UnitOfWork, a: AlertRecord, now: datetime) -> Verdict:
        sent = [SentAlert(k, s, at) for k, s, at in
                await uow.alerts.sent_since(a.tenant_id, now - self.policy.lookback)]
        return decide(a.kind, a.subject, now, sent, self.policy)

    async def _send(self, ch: AlertChannelRecord, a: AlertRecord, body: Mapping[str, Any],
                    now: datetime) -> str:
        """``ok``, or why this channel did not take the alert (no secret in it)."""
        if ch.kind == "email":
            if self.mail is None:
                return "email is not configured on this server (VANTA_SMTP_HOST)"
            try:
                await self.mail.send(OutgoingMail(
                    to=ch.target, subject=body["summary"], text=_email_text(body),
                    tenant_id=a.tenant_id, sender=self.mail_from))
            except Exception as e:  # MailNotSent, a refused header, a transport bug: retried
                return f"email not sent: {e}"[:500]
            return OK
        if ch.secret_ref is None:
            return "webhook channel has no signing key"
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        headers = signature_headers([self.secrets.get(ch.secret_ref)], a.alert_id,
                                    int(now.timestamp()), raw)
        res = await self.webhooks.send(ch.target, {**headers, "X-Vanta-Event": "alert"}, raw)
        if res.status is not None and 200 <= res.status < 300:
            return OK
        return (res.error or f"HTTP {res.status}")[:500]

    async def _settle(self, a: AlertRecord, results: dict[str, str], now: datetime) -> None:
        failed = [k for k, v in results.items() if v != OK]
        attempts = a.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "outcome": results}
        if failed and attempts <= len(self.retry_delays):
            delay = self.retry_delays[attempts - 1]
            values |= {"state": "pending", "next_at": now + timedelta(seconds=delay)}
        elif not results:
            values |= {"state": "unrouted", "next_at": None}  # the tenant has no channel
        else:
            ok = len(results) > len(failed)
            values |= {"state": "sent" if ok else "failed", "next_at": None,
                       "sent_at": now if ok else None}
        if failed:
            log.warning("alert channel failed", extra={"alert_id": a.alert_id,
                                                       "channels": failed})
        async with self.uow_factory() as uow:
            await uow.alerts.update(a.alert_id, expect_state="sending", **values)
            await uow.commit()
