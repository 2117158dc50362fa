"""The mailer contract (:mod:`vanta.application.ports.mailer`), run on every implementation:
the fake (``tests/fakes/mailer.py``), the local outbox folder, and SMTP against a real
aiosmtpd server on a free loopback port. What was sent is read back the way each one keeps
it: the fake's list, the outbox's ``.eml`` files, the SMTP server's received messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.fakes.mailer import FakeMailer
from tests.smtp_server import free_port, plain_text, running_smtp
from vanta.adapters.mail.outbox import OutboxMailer
from vanta.adapters.mail.smtp import SmtpConfig, SmtpMailer
from vanta.application.ports.mailer import Mailer, MailNotSent, OutgoingMail

SENDER = "no-reply@vanta.test"


@dataclass
class Sent:
    to: str
    subject: str
    text: str
    html: str | None
    sender: str = SENDER  # the From it went out with


@dataclass
class Impl:
    name: str
    mailer: Mailer
    received: Callable[[], list[Sent]]
    break_it: Callable[[], Mailer]  # a mailer of the same kind whose delivery fails


def _from_message(m: EmailMessage) -> Sent:
    html = m.get_body(preferencelist=("html",))
    return Sent(str(m["To"]), str(m["Subject"]), plain_text(m),
                html.get_content() if html is not None and html.get_content_type() ==
                "text/html" else None, str(m["From"]))


def _fake() -> Iterator[Impl]:
    fake = FakeMailer()

    def broken() -> Mailer:
        f = FakeMailer()
        f.fail_next()
        return f

    yield Impl("fake", fake, lambda: [Sent(m.to, m.subject, m.text, m.html,
                                           m.sender or SENDER) for m in fake.sent], broken)


def _outbox(tmp: Path) -> Iterator[Impl]:
    box = OutboxMailer(tmp / "outbox", SENDER)

    def read() -> list[Sent]:
        files = sorted((tmp / "outbox").glob("*.eml"))
        msgs = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]
        return [_from_message(m) for m in msgs if isinstance(m, EmailMessage)]

    def broken() -> Mailer:
        (tmp / "blocked").write_text("a file where the folder should be")
        return OutboxMailer(tmp / "blocked", SENDER)

    yield Impl("outbox", box, read, broken)


def _smtp() -> Iterator[Impl]:
    with running_smtp() as server:
        mailer = SmtpMailer(SmtpConfig(host=server.host, port=server.port, sender=SENDER,
                                       tls="none", timeout_seconds=5))

        def broken() -> Mailer:  # nothing listens there
            return SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port(), sender=SENDER,
                                         timeout_seconds=2))

        yield Impl("smtp", mailer, lambda: [_from_message(m) for m in server.received],
                   broken)


@pytest.fixture(params=["fake", "outbox", "smtp"])
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Impl]:
    gen = {"fake": _fake, "outbox": lambda: _outbox(tmp_path), "smtp": _smtp}[request.param]()
    yield next(gen)
    gen.close()


async def test_a_sent_message_arrives_with_its_recipient_subject_and_text(impl: Impl) -> None:
    await impl.mailer.send(OutgoingMail(to="ada@example.com", subject="Join Acme on Vanta",
                                        text="Follow https://app.example/accept/t0k3n"))
    [got] = impl.received()
    assert (got.to, got.subject) == ("ada@example.com", "Join Acme on Vanta")
    assert "https://app.example/accept/t0k3n" in got.text
    assert got.html is None


async def test_a_mail_with_its_own_sender_goes_out_from_it_and_the_others_do_not(
        impl: Impl) -> None:
    # operator alerts have their own From (VANTA_SMTP_FROM), invitations the mailer's
    await impl.mailer.send(OutgoingMail(to="ops@example.com", subject="[vanta] dead letter",
                                        text="fo_id: c-1\nerror: HTTP 500\n",
                                        sender="vanta-alerts@localhost"))
    await impl.mailer.send(OutgoingMail(to="ada@example.com", subject="Join", text="x"))
    alert, invite = impl.received()
    assert (alert.sender, invite.sender) == ("vanta-alerts@localhost", SENDER)
    assert alert.text.replace("\r\n", "\n") == "fo_id: c-1\nerror: HTTP 500\n"


async def test_smtp_sends_the_envelope_and_headers_from_the_mails_sender() -> None:
    with running_smtp() as server:
        mailer = SmtpMailer(SmtpConfig(host=server.host, port=server.port, sender=SENDER,
                                       timeout_seconds=5))
        await mailer.send(OutgoingMail(to="ops@example.com", subject="s", text="t",
                                       tenant_id="tnt_a", sender="alerts@vanta.test"))
        [(mail_from, rcpt)], [msg] = server.envelopes, server.received
    assert (mail_from, rcpt) == ("alerts@vanta.test", ["ops@example.com"])
    assert msg["From"] == "alerts@vanta.test" and msg["Message-ID"] and msg["Date"]
    assert msg["Message-ID"].endswith("@vanta.test>") and msg["X-Vanta-Tenant"] == "tnt_a"


async def test_the_html_alternative_and_non_ascii_text_survive(impl: Impl) -> None:
    await impl.mailer.send(OutgoingMail(to="bo@example.com", subject="Zürich — Einladung",
                                        text="Grüße, 你好", html="<p>Grüße</p>"))
    [got] = impl.received()
    assert got.subject == "Zürich — Einladung"
    assert got.text.strip() == "Grüße, 你好"
    assert got.html is not None and "<p>Grüße</p>" in got.html


async def test_messages_arrive_in_the_order_sent(impl: Impl) -> None:
    for n in range(3):
        await impl.mailer.send(OutgoingMail(to=f"u{n}@example.com", subject=f"n{n}",
                                            text="x"))
    assert [s.subject for s in impl.received()] == ["n0", "n1", "n2"]


async def test_a_failed_delivery_raises_mail_not_sent(impl: Impl) -> None:
    with pytest.raises(MailNotSent):
        await impl.break_it().send(OutgoingMail(to="c@example.com", subject="s", text="t"))


@pytest.mark.parametrize("to,subject", [("a@example.com\r\nBcc: x@evil.test", "s"),
                                        ("a@example.com", "s\r\nBcc: x@evil.test"),
                                        ("Ada <a@example.com>", "s"), ("not-an-address", "s")])
def test_a_header_injection_or_a_non_address_is_refused_before_any_send(to: str,
                                                                       subject: str) -> None:
    with pytest.raises(ValueError):
        OutgoingMail(to=to, subject=subject, text="t")


@pytest.mark.parametrize("sender", ["alerts@vanta.test\r\nBcc: x@evil.test", "nobody"])
def test_a_sender_that_adds_a_header_or_has_no_address_is_refused(sender: str) -> None:
    with pytest.raises(ValueError):
        OutgoingMail(to="a@example.com", subject="s", text="t", sender=sender)
