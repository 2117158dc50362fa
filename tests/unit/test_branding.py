"""Branding input: what an owner may set as the tenant's name, colour and logo."""

from __future__ import annotations

import pytest

from tests.images import data_url, gif, jpeg_header, png
from vanta.domain.branding import MAX_LOGO_BYTES, parse_accent, parse_branding, parse_logo
from vanta.domain.errors import ValidationFailed


@pytest.mark.parametrize("given,kept", [("#0A7", "#00aa77"), ("#2563EB", "#2563eb"),
                                        ("#abc", "#aabbcc")])
def test_an_accent_colour_is_kept_as_lower_case_six_digit_hex(given: str, kept: str) -> None:
    assert parse_accent(given) == kept


@pytest.mark.parametrize("bad", ["2563eb", "#12345", "#ggg", "red", "#1234567", None, 0x2563EB,
                                 "#abc\n", "url(javascript:x)"])
def test_anything_but_hex_is_refused_as_a_colour(bad: object) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_accent(bad)
    assert (e.value.code, e.value.field) == ("invalid_accent_color", "accent_color")


@pytest.mark.parametrize("kind,data,size", [("image/png", png(3, 2), 3),
                                            ("image/gif", gif(5, 1), 5),
                                            ("image/jpeg", jpeg_header(4, 3), 4)])
def test_png_gif_and_jpeg_logos_are_taken_as_bytes(kind: str, data: bytes, size: int) -> None:
    logo = parse_logo(data_url(kind, data))
    assert logo is not None and (logo.media_type, logo.data) == (kind, data)
    assert logo.data_url() == data_url(kind, data)


@pytest.mark.parametrize("value,code", [
    ("https://cdn.example/logo.png", "invalid_logo"),
    (data_url("image/svg+xml", b"<svg onload='alert(1)'/>"), "unsupported_logo_type"),
    (data_url("image/png", gif()), "invalid_logo"),  # the bytes are not the type named
    (data_url("image/jpeg", b"\xff\xd8 not a jpeg"), "invalid_logo"),
    ("data:image/png;base64,@@@", "invalid_logo"),
    (data_url("image/png", png(1025, 1)), "logo_too_large"),
    (data_url("image/png", png(1, 1) + b"\0" * MAX_LOGO_BYTES), "logo_too_large"),
])
def test_a_logo_that_is_not_a_small_checked_image_is_refused(value: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_logo(value)
    assert (e.value.code, e.value.field) == (code, "logo")


def test_a_brand_needs_a_printable_name_and_takes_no_other_fields() -> None:
    b = parse_branding({"display_name": "  Acme Capital ", "accent_color": "#0a7"})
    assert (b.display_name, b.accent_color, b.logo) == ("Acme Capital", "#00aa77", None)
    for bad in ("", "   ", "a\x00b", "x" * 81, None):
        with pytest.raises(ValidationFailed) as e:
            parse_branding({"display_name": bad, "accent_color": "#000"})
        assert e.value.code == "invalid_display_name"
    with pytest.raises(ValidationFailed) as e:
        parse_branding({"display_name": "A", "accent_color": "#000", "logo_url": "x"})
    assert (e.value.code, e.value.field) == ("unknown_field", "logo_url")


@pytest.mark.parametrize("accent,text", [("#ffffff", "#000000"), ("#000000", "#ffffff"),
                                         ("#2563eb", "#ffffff"), ("#ffd400", "#000000")])
def test_text_on_the_accent_is_whichever_of_black_or_white_reads_better(accent: str,
                                                                        text: str) -> None:
    from vanta.entrypoints.web.routes_branding import text_on
    assert text_on(accent) == text


def test_an_invitation_subject_stays_one_line_whatever_the_tenant_is_called() -> None:
    from vanta.application.onboarding import invitation_mail
    mail = invitation_mail(to="a@b.example", tenant_name="Acme\r\nBcc: x@evil.test",
                           role="ops", link="https://app.example/app/invitations/t",
                           expires="2026-12-13 09:00", tenant_id="tnt_a")
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.subject == "Join Acme Bcc: x@evil.test as ops"
