"""Builds the MIME message both mail adapters send or store."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from vanta.application.ports.mailer import OutgoingMail


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    """``sender`` is the mailer's default From; the mail's own ``sender`` wins."""
    sender = mail.sender or sender
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "vanta.local")
    if mail.tenant_id is not None:
        msg["X-Vanta-Tenant"] = mail.tenant_id
    msg.set_content(mail.text)
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html")
    return msg
