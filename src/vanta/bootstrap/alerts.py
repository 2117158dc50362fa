"""Wiring of operator alerts: the delivery worker the scheduler runs, with the one mailer (from
``smtp_from``) when an SMTP host is configured, and the webhook sender the follower webhooks
use (same SSRF policy)."""

from __future__ import annotations

from datetime import timedelta

from vanta.application.alerts import AlertDelivery
from vanta.application.ports.delivery import WebhookSender
from vanta.application.ports.mailer import Mailer
from vanta.application.ports.secrets import SecretReader
from vanta.application.ports.uow import UowFactory
from vanta.config import Settings
from vanta.domain.alerts import AlertPolicy


def alert_policy(s: Settings) -> AlertPolicy:
    return AlertPolicy(dedupe_window=timedelta(seconds=s.alert_dedupe_seconds),
                       window=timedelta(seconds=s.alert_window_seconds),
                       per_kind=s.alert_per_kind, per_subject=s.alert_per_subject)


def build_alert_delivery(s: Settings, uow_factory: UowFactory, webhooks: WebhookSender,
                         secrets: SecretReader, mailer: Mailer) -> AlertDelivery:
    """Without an SMTP host the mailer is the local outbox: alerts do not use it (email
    channels are refused then, and an existing one's alerts fail and say why)."""
    return AlertDelivery(uow_factory=uow_factory, webhooks=webhooks, secrets=secrets,
                         mail=mailer if s.smtp_host else None, mail_from=s.smtp_from,
                         policy=alert_policy(s))
