"""The web session cookie: signed (tampering or another cookie's value is refused), dropped
after the idle timeout or the sign-in token's expiry, and the principal it carries."""

from __future__ import annotations

from pathlib import Path

from vanta.application.principal import Principal
from vanta.config import Settings
from vanta.entrypoints.web.session import Signer, alive, new_session, principal_of, session_key


def test_a_signed_value_reads_back_and_any_change_is_refused() -> None:
    s = Signer(b"k" * 32)
    raw = s.dumps({"sub": "u", "n": 1}, "session")
    assert s.loads(raw, "session") == {"sub": "u", "n": 1}
    body, mac = raw.split(".")
    assert s.loads(body[:-2] + "AA." + mac, "session") is None
    assert s.loads(raw, "login") is None  # one cookie never passes as another
    assert Signer(b"x" * 32).loads(raw, "session") is None
    for junk in (None, "", "nodot", "a.b.c", "!!.??"):
        assert s.loads(junk, "session") is None


def test_idle_timeout_and_token_expiry_end_a_session() -> None:
    p = Principal("u", "t", frozenset({"vault:read"}), frozenset({"auditor"}), None,
                  frozenset({"V1"}))
    data = new_session(p, token_exp=10_000, now=1_000)
    assert principal_of(data) == p and len(data["csrf"]) >= 32
    assert alive(data, idle_s=600, now=1_599)
    assert not alive(data, idle_s=600, now=1_601)  # idle too long
    data["seen"] = 9_999
    assert not alive(data, idle_s=600, now=10_000)  # the token it came from expired
    assert not alive(None, 600) and not alive({}, 600)


def test_the_session_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    key = session_key(s)
    assert len(key) == 32 and session_key(s) == key
    assert s.web_session_key_path.stat().st_mode & 0o077 == 0
    given = Settings(data_dir=tmp_path, web_session_secret="shared-between-processes")
    assert session_key(given) != key and session_key(given) == session_key(given)
