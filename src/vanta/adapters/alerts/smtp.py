"""Operator alert mail over SMTP (aiosmtplib): the ``AlertSender`` port."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

import aiosmtplib

from vanta.application.ports.alerts import AlertNotSent

__all__ = ["SmtpAlertSender", "SmtpConfig"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    sender: str = "vanta-alerts@localhost"
    username: str | None = None
    password: str | None = None  # from the settings' secret; never logged
    tls: Literal["none", "starttls", "tls"] = "none"
    timeout_seconds: float = 10.0


class SmtpAlertSender:
    """One connection per mail: alerts are rare, and a pooled connection would go stale."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def _message(self, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2] or None)
        msg.set_content(text)
        return msg

    async def send_email(self, to: str, subject: str, text: str) -> None:
        c = self.config
        try:
            msg = self._message(to, subject, text)
            await aiosmtplib.send(
                msg, hostname=c.host, port=c.port, username=c.username, password=c.password,
                use_tls=c.tls == "tls", start_tls=c.tls == "starttls",
                timeout=c.timeout_seconds)
        except (aiosmtplib.SMTPException, OSError, ValueError) as e:
            # the exception text names the server's answer, never the credentials
            raise AlertNotSent(f"{type(e).__name__}: {e}") from None
