"""The alert mail transport contract (:class:`~vanta.application.ports.alerts.AlertSender`), on
the fake (``tests/fakes/alerts.py``) and on the SMTP adapter against a real ``aiosmtpd``
server on 127.0.0.1 (a free port, stopped by the test).

What the alert worker relies on: a mail that was sent arrives with its recipient, subject and
text; one that could not be handed over raises ``AlertNotSent`` (then it is tried again)."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.fakes.alerts import FakeAlertSender
from vanta.adapters.alerts.smtp import SmtpAlertSender, SmtpConfig
from vanta.application.ports.alerts import AlertNotSent, AlertSender


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@dataclass
class Harness:
    sender: AlertSender
    received: Callable[[], list[tuple[str, str, str]]]  # (to, subject, text) that arrived
    break_transport: Callable[[], None]


@pytest.fixture
def smtp_server() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture(params=["fake", "smtp"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "fake":
        fake = FakeAlertSender()
        yield Harness(fake, lambda: list(fake.sent),
                      lambda: setattr(fake, "fail_with", "connection refused"))
        return
    controller, inbox = request.getfixturevalue("smtp_server")
    sender = SmtpAlertSender(SmtpConfig(host="127.0.0.1", port=controller.port,
                                        sender="alerts@vanta.test", timeout_seconds=5))

    def received() -> list[tuple[str, str, str]]:
        # SMTP carries CRLF line ends; the text as written has LF
        return [(str(m["To"]), str(m["Subject"]), m.get_content().replace("\r\n", "\n"))
                for _, _, m in inbox.messages]

    def break_transport() -> None:
        sender.config = SmtpConfig(host="127.0.0.1", port=free_port(), timeout_seconds=2)
    yield Harness(sender, received, break_transport)


async def test_a_sent_mail_arrives_with_its_recipient_subject_and_text(harness: Harness) -> None:
    await harness.sender.send_email("ops@example.com", "[vanta] dead letter: f1",
                                    "fo_id: c-1\nerror: HTTP 500\n")
    assert harness.received() == [("ops@example.com", "[vanta] dead letter: f1",
                                    "fo_id: c-1\nerror: HTTP 500\n")]


async def test_a_mail_that_cannot_be_handed_over_raises_alert_not_sent(
        harness: Harness) -> None:
    harness.break_transport()
    with pytest.raises(AlertNotSent):
        await harness.sender.send_email("ops@example.com", "s", "t")
    assert harness.received() == []


async def test_the_smtp_envelope_and_headers(smtp_server: Any) -> None:
    controller, inbox = smtp_server
    sender = SmtpAlertSender(SmtpConfig(host="127.0.0.1", port=controller.port,
                                        sender="alerts@vanta.test"))
    await sender.send_email("ops@example.com", "subject", "text\n")
    [(mail_from, rcpt, msg)] = inbox.messages
    assert (mail_from, rcpt) == ("alerts@vanta.test", ["ops@example.com"])
    assert msg["From"] == "alerts@vanta.test" and msg["Message-ID"] and msg["Date"]


async def test_a_header_injection_attempt_is_refused_not_sent(smtp_server: Any) -> None:
    controller, inbox = smtp_server
    sender = SmtpAlertSender(SmtpConfig(host="127.0.0.1", port=controller.port))
    with pytest.raises(AlertNotSent):
        await sender.send_email("ops@example.com", "s\nBcc: evil@example.com", "t")
    assert inbox.messages == []
