"""Wiring of operator alerts: the delivery worker the scheduler runs, with SMTP when a host is
configured and the webhook sender the follower webhooks use (same SSRF policy)."""

from __future__ import annotations

from datetime import timedelta

from vanta.adapters.alerts.smtp import SmtpAlertSender, SmtpConfig
from vanta.application.alerts import AlertDelivery
from vanta.application.ports.delivery import WebhookSender
from vanta.application.ports.secrets import SecretReader
from vanta.application.ports.uow import UowFactory
from vanta.config import Settings
from vanta.domain.alerts import AlertPolicy


def alert_policy(s: Settings) -> AlertPolicy:
    return AlertPolicy(dedupe_window=timedelta(seconds=s.alert_dedupe_seconds),
                       window=timedelta(seconds=s.alert_window_seconds),
                       per_kind=s.alert_per_kind, per_subject=s.alert_per_subject)


def smtp_sender(s: Settings) -> SmtpAlertSender | None:
    if not s.smtp_host:
        return None
    return SmtpAlertSender(SmtpConfig(
        host=s.smtp_host, port=s.smtp_port, sender=s.smtp_from, username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        tls=s.smtp_tls, timeout_seconds=s.smtp_timeout_seconds))


def build_alert_delivery(s: Settings, uow_factory: UowFactory, webhooks: WebhookSender,
                         secrets: SecretReader) -> AlertDelivery:
    return AlertDelivery(uow_factory=uow_factory, webhooks=webhooks, secrets=secrets,
                         mail=smtp_sender(s), policy=alert_policy(s))
