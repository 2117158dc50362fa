"""The local outbox folder: what the app lists on the embedded profile without SMTP."""

from __future__ import annotations

import stat
from pathlib import Path

from vanta.adapters.mail.outbox import OutboxMailer
from vanta.application.ports.mailer import OutgoingMail
from vanta.bootstrap.alerts import build_alert_delivery
from vanta.bootstrap.mail import build_mailer
from vanta.config import Settings


async def test_the_outbox_lists_newest_first_and_reads_one_back(tmp_path: Path) -> None:
    box = OutboxMailer(tmp_path / "out", "no-reply@vanta.test")
    for n in range(3):
        await box.send(OutgoingMail(to=f"u{n}@example.com", subject=f"n{n}", text=f"body {n}",
                                    tenant_id="tnt_a"))
    await box.send(OutgoingMail(to="b@example.com", subject="b", text="b", tenant_id="tnt_b"))
    items = await box.list("tnt_a")
    assert [i.subject for i in items] == ["n2", "n1", "n0"]
    assert [i.subject for i in await box.list("tnt_a", limit=1)] == ["n2"]
    one = await box.get("tnt_a", items[1].mail_id)
    assert one is not None and (one.to, one.text.strip()) == ("u1@example.com", "body 1")
    [b] = await box.list("tnt_b")
    assert await box.get("tnt_a", b.mail_id) is None  # another tenant's mail: as unknown


async def test_outbox_files_are_private_and_whole(tmp_path: Path) -> None:
    box = OutboxMailer(tmp_path / "out", "no-reply@vanta.test")
    await box.send(OutgoingMail(to="a@example.com", subject="s", text="secret link"))
    [f] = list((tmp_path / "out").iterdir())  # no temporary file left behind
    assert f.suffix == ".eml"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


async def test_a_mail_id_that_is_not_one_never_reaches_the_file_system(tmp_path: Path) -> None:
    (tmp_path / "secret.eml").write_text("Subject: no\n\nnot yours")
    box = OutboxMailer(tmp_path / "out", "no-reply@vanta.test")
    assert await box.get("tnt_a", "../secret") is None
    assert await box.list("tnt_a") == []  # no folder yet: an empty outbox


def test_settings_choose_smtp_with_a_host_and_the_outbox_without(tmp_path: Path) -> None:
    mailer, outbox = build_mailer(Settings(data_dir=tmp_path))
    assert isinstance(mailer, OutboxMailer) and outbox is mailer
    assert mailer.folder == tmp_path / "outbox"
    smtp, none = build_mailer(Settings(data_dir=tmp_path, smtp_host="127.0.0.1",
                                       smtp_port=2525))
    assert none is None and type(smtp).__name__ == "SmtpMailer"


def test_alerts_use_the_one_mailer_from_their_own_address_and_only_with_smtp(
        tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_from="alerts@vanta.test")
    mailer, _ = build_mailer(s)
    d = build_alert_delivery(s, None, None, None, mailer)  # type: ignore[arg-type]
    assert d.mail is mailer and d.mail_from == "alerts@vanta.test"
    embedded = Settings(data_dir=tmp_path)
    outbox, _ = build_mailer(embedded)
    # the local outbox is for invitations; alerts without SMTP fail and say so
    assert build_alert_delivery(embedded, None, None, None,  # type: ignore[arg-type]
                                outbox).mail is None
