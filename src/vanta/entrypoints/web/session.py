"""The web app's session: a signed cookie (HMAC-SHA256 over its JSON), HttpOnly,
SameSite=Lax, Secure over https, dropped after an idle timeout or when the sign-in token would
have expired. Nothing secret is in it: the verified grants, a CSRF token and flash messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vanta.application.principal import Principal
from vanta.config import Settings

SESSION_COOKIE = "vanta_session"
LOGIN_COOKIE = "vanta_login"  # the pending sign-in (state, PKCE verifier), ten minutes
LOGIN_TTL_S = 600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_key(s: Settings) -> bytes:
    """The configured secret, else a random key kept 0600 in the data folder (one process
    or one host); created once, the winner of a creation race defines it."""
    if s.web_session_secret is not None:
        return hashlib.sha256(s.web_session_secret.get_secret_value().encode()).digest()
    path: Path = s.web_session_key_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path} holds a short session key; delete it to make a new one")
    return key


class Signer:
    """Signs and checks cookie values; ``purpose`` keeps one cookie from passing as another."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def dumps(self, data: dict[str, Any], purpose: str) -> str:
        body = _b64(json.dumps(data, separators=(",", ":")).encode())
        mac = hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def loads(self, raw: str | None, purpose: str) -> dict[str, Any] | None:
        if not raw or raw.count(".") != 1:
            return None
        body, mac = raw.split(".")
        want = hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(want, _unb64(mac)):
                return None
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def new_session(p: Principal, *, token_exp: int, now: float | None = None) -> dict[str, Any]:
    t = int(now if now is not None else time.time())
    return {"sub": p.subject, "tid": p.tenant_id, "scp": sorted(p.scopes),
            "rol": sorted(p.roles), "fid": p.follower_id,
            "vids": None if p.vault_ids is None else sorted(p.vault_ids),
            "csrf": secrets.token_urlsafe(24), "exp": token_exp, "seen": t, "flash": []}


def principal_of(data: dict[str, Any]) -> Principal:
    vids = data.get("vids")
    return Principal(subject=str(data["sub"]), tenant_id=str(data["tid"]),
                     scopes=frozenset(data.get("scp") or ()),
                     roles=frozenset(data.get("rol") or ()), follower_id=data.get("fid"),
                     vault_ids=None if vids is None else frozenset(vids))


def alive(data: dict[str, Any] | None, idle_s: int, now: float | None = None) -> bool:
    if not data or "sub" not in data:
        return False
    t = now if now is not None else time.time()
    return bool(t - float(data.get("seen", 0)) <= idle_s and t < float(data.get("exp", 0)))


def set_cookie(request: Request, response: Response, name: str, value: str, *,
               max_age: int, path: str = "/app") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response, name: str, path: str = "/app") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
