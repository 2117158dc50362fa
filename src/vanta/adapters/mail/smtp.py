"""Sends mail through an SMTP server with aiosmtplib (STARTTLS or implicit TLS, optional
login). Every delivery failure becomes :class:`MailNotSent`."""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib

from vanta.adapters.mail.message import build_message
from vanta.application.ports.mailer import MailNotSent, OutgoingMail


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    tls: str = "none"  # none | starttls | tls (implicit), as VANTA_SMTP_TLS spells them
    timeout_seconds: float = 10.0


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, mail: OutgoingMail) -> None:
        c = self.config
        msg = build_message(mail, c.sender)
        try:
            await aiosmtplib.send(
                msg, hostname=c.host, port=c.port, username=c.username, password=c.password,
                use_tls=c.tls == "tls", start_tls=c.tls == "starttls",
                timeout=c.timeout_seconds)
        except (aiosmtplib.SMTPException, OSError, ValueError) as e:
            # ValueError: aiosmtplib found no usable envelope address in the headers
            # the server's answer names the problem; the message body is not logged
            raise MailNotSent(f"SMTP {c.host}:{c.port}: {type(e).__name__}: {e}") from None
