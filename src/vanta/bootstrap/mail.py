"""The mailer the settings choose: SMTP when a host is configured, else the local outbox
folder (which the app can also list)."""

from __future__ import annotations

from vanta.adapters.mail.outbox import OutboxMailer
from vanta.adapters.mail.smtp import SmtpConfig, SmtpMailer
from vanta.application.ports.mailer import Mailer, MailOutbox
from vanta.config import Settings


def build_mailer(s: Settings) -> tuple[Mailer, MailOutbox | None]:
    if s.smtp_host:
        return SmtpMailer(SmtpConfig(
            host=s.smtp_host, port=s.smtp_port, sender=s.mail_from, username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            tls=s.smtp_tls, timeout_seconds=s.smtp_timeout_seconds)), None
    outbox = OutboxMailer(s.mail_outbox_dir, s.mail_from)
    return outbox, outbox
