"""The embedded profile's mailer without SMTP settings: each message becomes an ``.eml``
file in a local folder (readable by any mail client), which the app lists."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from vanta.adapters.mail.message import build_message
from vanta.application.ports.mailer import MailNotSent, OutboxItem, OutgoingMail
from vanta.domain.ids import new_id

_MAIL_ID = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f-]{36}$")


class OutboxMailer:
    """Writes ``<folder>/<utc time>-<uuid>.eml``; the name sorts by time."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    async def send(self, mail: OutgoingMail) -> None:
        data = bytes(build_message(mail, self.sender))
        now = datetime.now(UTC)
        mail_id = f"{now:%Y%m%dT%H%M%S%f}-{new_id()}"
        try:
            await asyncio.to_thread(self._write, mail_id, data)
        except OSError as e:
            raise MailNotSent(f"outbox {self.folder}: {e}") from None

    def _write(self, mail_id: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.folder / f".{mail_id}.tmp"
        tmp.write_bytes(data)
        os.chmod(tmp, 0o600)  # invitation links are credentials
        tmp.replace(self.folder / f"{mail_id}.eml")  # readers never see half a file

    async def list(self, tenant_id: str, limit: int = 50) -> list[OutboxItem]:
        return await asyncio.to_thread(self._list, tenant_id, limit)

    def _list(self, tenant_id: str, limit: int) -> list[OutboxItem]:
        if not self.folder.is_dir():
            return []
        out: list[OutboxItem] = []
        for name in sorted((p.stem for p in self.folder.glob("*.eml")), reverse=True):
            if len(out) >= limit:
                break
            item = self._read(name)
            if item is not None and item.tenant_id == tenant_id:
                out.append(item)
        return out

    async def get(self, tenant_id: str, mail_id: str) -> OutboxItem | None:
        if not _MAIL_ID.fullmatch(mail_id):  # a name from outside never reaches the disk
            return None
        item = await asyncio.to_thread(self._read, mail_id)
        return item if item is not None and item.tenant_id == tenant_id else None

    def _read(self, mail_id: str) -> OutboxItem | None:
        try:
            raw = (self.folder / f"{mail_id}.eml").read_bytes()
        except OSError:
            return None
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(preferencelist=("plain",))
        written = datetime.strptime(mail_id[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        return OutboxItem(mail_id=mail_id, to=str(msg["To"]), subject=str(msg["Subject"]),
                          written_at=written,
                          text=body.get_content() if body is not None else "",
                          tenant_id=str(msg["X-Vanta-Tenant"]) if msg["X-Vanta-Tenant"]
                          else None)
