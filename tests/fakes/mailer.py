"""An in-memory mailer for the :mod:`vanta.application.ports.mailer` port: keeps every sent
message (``sent``) and doubles as the outbox listing. ``fail_next`` makes the next sends raise
:class:`MailNotSent`, as a server that is away would."""

from __future__ import annotations

from datetime import UTC, datetime

from vanta.application.ports.mailer import MailNotSent, OutboxItem, OutgoingMail


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self._items: list[OutboxItem] = []
        self._failures = 0

    def fail_next(self, n: int = 1) -> None:
        self._failures = n

    async def send(self, mail: OutgoingMail) -> None:
        if self._failures:
            self._failures -= 1
            raise MailNotSent("fake: server away")
        self.sent.append(mail)
        self._items.append(OutboxItem(mail_id=f"m{len(self._items):06d}", to=mail.to,
                                      subject=mail.subject, written_at=datetime.now(UTC),
                                      text=mail.text, tenant_id=mail.tenant_id))

    async def list(self, tenant_id: str, limit: int = 50) -> list[OutboxItem]:
        return [i for i in reversed(self._items) if i.tenant_id == tenant_id][:max(limit, 0)]

    async def get(self, tenant_id: str, mail_id: str) -> OutboxItem | None:
        return next((i for i in self._items
                     if i.mail_id == mail_id and i.tenant_id == tenant_id), None)
