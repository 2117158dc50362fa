"""Outbound signing (adapter) against the receiver helper and the standardwebhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from vanta.domain.webhook_signing import (
    new_webhook_secret,
    sign_standard,
    sign_vanta,
    signature_headers,
    standard_secret_string,
)
from vanta.receiving import WebhookVerificationError, verify, verify_standard, verify_vanta

BODY = json.dumps({"type": "order.mirrored", "data": {"qty": "1.5"}}).encode()
MSG_ID = "msg_2x7Yb9QpLkM3"
NOW = 1_700_000_000


def _reason(exc: pytest.ExceptionInfo[WebhookVerificationError]) -> str:
    return exc.value.reason


def test_sign_vanta_matches_independent_hmac() -> None:
    secret = new_webhook_secret()
    expected = hmac.new(secret, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_vanta(secret, NOW, BODY) == f"sha256={expected}"
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    assert headers["X-Vanta-Signature"] == f"sha256={expected}"
    assert headers["X-Vanta-Timestamp"] == str(NOW)


def test_sign_standard_matches_independent_hmac() -> None:
    secret = new_webhook_secret()
    mac = hmac.new(secret, f"{MSG_ID}.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    assert sign_standard(secret, MSG_ID, NOW, BODY) == "v1," + base64.b64encode(mac).decode()


def test_headers_shape() -> None:
    headers = signature_headers([b"k" * 32], MSG_ID, NOW, BODY)
    assert set(headers) == {"Content-Type", "X-Vanta-Timestamp", "X-Vanta-Signature",
                            "webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"].startswith("v1,")


def test_empty_secrets_rejected() -> None:
    with pytest.raises(ValueError):
        signature_headers([], MSG_ID, NOW, BODY)


def test_new_secret_is_32_random_bytes() -> None:
    a, b = new_webhook_secret(), new_webhook_secret()
    assert isinstance(a, bytes) and len(a) == 32 and a != b


def test_standard_secret_string_round_trips() -> None:
    secret = new_webhook_secret()
    s = standard_secret_string(secret)
    assert s.startswith("whsec_")
    assert base64.b64decode(s.removeprefix("whsec_")) == secret


def test_round_trip_both_schemes() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    verify_vanta(headers, BODY, secret, now=NOW)
    verify_standard(headers, BODY, secret, now=NOW)
    verify(headers, BODY, secret, now=NOW, require="both")
    verify(headers, BODY, standard_secret_string(secret), now=NOW)


def test_standardwebhooks_library_accepts_our_headers() -> None:
    secret = new_webhook_secret()
    ts = int(time.time())
    headers = signature_headers([secret], MSG_ID, ts, BODY)
    payload = Webhook(standard_secret_string(secret)).verify(BODY, headers)
    assert payload == json.loads(BODY)


def test_standardwebhooks_library_accepts_rotation_headers() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    ts = int(time.time())
    headers = signature_headers([old, new], MSG_ID, ts, BODY)
    for secret in (old, new):
        Webhook(standard_secret_string(secret)).verify(BODY, headers)


def test_header_lookup_is_case_insensitive() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    upper = {k.upper(): v for k, v in headers.items()}
    lower = {k.lower(): v for k, v in headers.items()}
    for h in (upper, lower):
        verify(h, BODY, secret, now=NOW, require="both")


@pytest.mark.parametrize("fn", [verify_vanta, verify_standard, verify])
def test_tampered_body(fn: object) -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    with pytest.raises(WebhookVerificationError) as exc:
        fn(headers, BODY + b" ", secret, now=NOW)  # type: ignore[operator]
    assert _reason(exc) == "bad_signature"


@pytest.mark.parametrize("fn", [verify_vanta, verify_standard, verify])
def test_wrong_secret(fn: object) -> None:
    headers = signature_headers([new_webhook_secret()], MSG_ID, NOW, BODY)
    with pytest.raises(WebhookVerificationError) as exc:
        fn(headers, BODY, new_webhook_secret(), now=NOW)  # type: ignore[operator]
    assert _reason(exc) == "bad_signature"


@pytest.mark.parametrize("fn", [verify_vanta, verify_standard, verify])
@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_stale_timestamp(fn: object, skew: int) -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    with pytest.raises(WebhookVerificationError) as exc:
        fn(headers, BODY, secret, now=NOW + skew)  # type: ignore[operator]
    assert _reason(exc) == "stale_timestamp"


def test_timestamp_within_tolerance_accepted() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    verify(headers, BODY, secret, now=NOW + 300, require="both")
    verify(headers, BODY, secret, now=NOW - 300, require="both")
    with pytest.raises(WebhookVerificationError):
        verify(headers, BODY, secret, now=NOW + 11, tolerance=10)


def test_default_now_is_wall_clock() -> None:
    """Default ``now`` is the wall clock: an old-but-valid message is rejected."""
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    with pytest.raises(WebhookVerificationError) as exc:
        verify(headers, BODY, secret)
    assert _reason(exc) == "stale_timestamp"


@pytest.mark.parametrize(
    ("fn", "drop"),
    [
        (verify_vanta, "X-Vanta-Signature"),
        (verify_vanta, "X-Vanta-Timestamp"),
        (verify_standard, "webhook-id"),
        (verify_standard, "webhook-timestamp"),
        (verify_standard, "webhook-signature"),
    ],
)
def test_missing_header(fn: object, drop: str) -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    del headers[drop]
    with pytest.raises(WebhookVerificationError) as exc:
        fn(headers, BODY, secret, now=NOW)  # type: ignore[operator]
    assert _reason(exc) == "missing_headers"


def test_verify_missing_all_headers() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify({"Content-Type": "application/json"}, BODY, new_webhook_secret(), now=NOW)
    assert _reason(exc) == "missing_headers"


def test_verify_any_accepts_single_scheme_but_both_requires_both() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    vanta_only = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    std_only = {k: v for k, v in headers.items() if not k.startswith("X-Vanta-")}
    for h in (vanta_only, std_only):
        verify(h, BODY, secret, now=NOW)
        with pytest.raises(WebhookVerificationError) as exc:
            verify(h, BODY, secret, now=NOW, require="both")
        assert _reason(exc) == "missing_headers"


def test_verify_any_checks_every_present_scheme() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    headers["webhook-signature"] = sign_standard(new_webhook_secret(), MSG_ID, NOW, BODY)
    with pytest.raises(WebhookVerificationError) as exc:
        verify(headers, BODY, secret, now=NOW)
    assert _reason(exc) == "bad_signature"


@pytest.mark.parametrize("ts", ["", "abc", "1.5e9", "-5", "１２３"])
def test_bad_timestamp(ts: str) -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    headers["X-Vanta-Timestamp"] = ts
    headers["webhook-timestamp"] = ts
    expected = "missing_headers" if ts == "" else "bad_timestamp"
    for fn in (verify_vanta, verify_standard):
        with pytest.raises(WebhookVerificationError) as exc:
            fn(headers, BODY, secret, now=NOW)
        assert _reason(exc) == expected


def test_garbage_signatures_are_bad_signature_not_crash() -> None:
    secret = new_webhook_secret()
    headers = signature_headers([secret], MSG_ID, NOW, BODY)
    headers["X-Vanta-Signature"] = "sha256=zz, nonsense, sha256=ünïcode, =, sha256="
    headers["webhook-signature"] = "v1,!!! v2,abc v1 ,, v1,ü"
    for fn in (verify_vanta, verify_standard):
        with pytest.raises(WebhookVerificationError) as exc:
            fn(headers, BODY, secret, now=NOW)
        assert _reason(exc) == "bad_signature"


def test_rotation_receiver_with_either_secret_verifies() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    headers = signature_headers([old, new], MSG_ID, NOW, BODY)
    assert headers["X-Vanta-Signature"].count("sha256=") == 2
    assert ", " in headers["X-Vanta-Signature"]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new, standard_secret_string(old), standard_secret_string(new)):
        verify(headers, BODY, secret, now=NOW, require="both")
    with pytest.raises(WebhookVerificationError) as exc:
        verify(headers, BODY, new_webhook_secret(), now=NOW)
    assert _reason(exc) == "bad_signature"


def test_string_secret_must_be_whsec() -> None:
    headers = signature_headers([b"k" * 32], MSG_ID, NOW, BODY)
    with pytest.raises(ValueError):
        verify(headers, BODY, "plain-text-secret", now=NOW)


_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
               min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=1, max_size=512), secret=st.binary(min_size=1, max_size=64),
       msg_id=_ids, ts=st.integers(min_value=0, max_value=2**40), data=st.data())
def test_property_round_trip_and_single_byte_change_fails(
    body: bytes, secret: bytes, msg_id: str, ts: int, data: st.DataObject
) -> None:
    headers = signature_headers([secret], msg_id, ts, body)
    verify(headers, body, secret, now=ts, require="both")
    verify(headers, body, standard_secret_string(secret), now=ts, require="both")

    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    delta = data.draw(st.integers(min_value=1, max_value=255), label="xor")
    tampered = bytearray(body)
    tampered[i] ^= delta
    for fn in (verify_vanta, verify_standard):
        with pytest.raises(WebhookVerificationError) as exc:
            fn(headers, bytes(tampered), secret, now=ts)
        assert exc.value.reason == "bad_signature"


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
       secret=st.binary(min_size=1, max_size=64), msg_id=_ids)
def test_property_standardwebhooks_library_agrees(text: str, secret: bytes, msg_id: str) -> None:
    body = text.encode("utf-8")
    headers = signature_headers([secret], msg_id, int(time.time()), body)
    Webhook(standard_secret_string(secret)).verify(body, headers, json_parse=False)
