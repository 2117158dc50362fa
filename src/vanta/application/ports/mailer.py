"""Outgoing email: invitations, operator alerts and other notices to people (not to
followers' systems). The one mail port: every mail the platform sends goes through it.

Implementations: ``vanta.adapters.mail.smtp.SmtpMailer`` (any SMTP server, via aiosmtplib)
and ``vanta.adapters.mail.outbox.OutboxMailer`` (the embedded profile without SMTP settings:
each message is written as an ``.eml`` file under the data folder, where the app lists it).

* ``send(mail)`` delivers one plain-text message (with an optional HTML alternative) or
  raises :class:`MailNotSent`; it never raises anything else for a delivery problem.
  ``mail.sender`` sets the From address (and SMTP envelope sender) of that one message;
  unset, the mailer's configured sender is used (operator alerts have an address of their
  own, invitations use the default).
* A :class:`MailOutbox` (only the local outbox has one) lists what was "sent" for a tenant,
  newest first, and reads one message back by its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["MailNotSent", "MailOutbox", "Mailer", "OutboxItem", "OutgoingMail",
           "valid_address"]

_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[^@\s<>\"',;]{1,255}\.[^@\s<>\"',;]{2,}$")


def valid_address(address: str) -> bool:
    """A bare address (no display name), nothing that could add a header or a recipient."""
    return bool(_ADDRESS.fullmatch(address)) and "\r" not in address and "\n" not in address


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str | None = None
    # the tenant the mail is sent for: kept with the message (an ``X-Vanta-Tenant`` header),
    # so a shared outbox lists each tenant only its own mail
    tenant_id: str | None = None
    # From for this message; None: the mailer's own. Not held to ``valid_address``: a
    # configured sender may be a local one (``vanta-alerts@localhost``)
    sender: str | None = None

    def __post_init__(self) -> None:
        # a header injection (a newline in the subject or address) is refused here, once,
        # for every implementation
        if not valid_address(self.to):
            raise ValueError(f"not a mail address: {self.to!r}")
        if self.sender is not None and "@" not in self.sender:
            raise ValueError(f"not a sender address: {self.sender!r}")
        for value in (self.subject, self.tenant_id or "", self.sender or ""):
            if "\r" in value or "\n" in value:
                raise ValueError("a header is one line")


class MailNotSent(Exception):
    """The message could not be handed over (server away, refused, bad credentials)."""


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboxItem:
    mail_id: str
    to: str
    subject: str
    written_at: datetime
    text: str
    tenant_id: str | None = None


class MailOutbox(Protocol):
    async def list(self, tenant_id: str, limit: int = 50) -> list[OutboxItem]:
        """The tenant's mail, newest first."""
        ...

    async def get(self, tenant_id: str, mail_id: str) -> OutboxItem | None:
        """One of the tenant's mails; another tenant's answers None, like an unknown id."""
        ...
