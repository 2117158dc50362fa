"""OAuth 2.0 token requests against a discovered ``token_endpoint`` (RFC 6749).

Both grants post a form-encoded body and authenticate the client with HTTP Basic
(``client_secret_basic``: id and secret form-encoded, then base64, RFC 6749 §2.3.1). The
successful token response is returned as a dict; every failure (discovery, transport, an
OAuth error response, an unusable answer) raises :class:`TokenExchangeError` with the OAuth
``error`` code when the server gave one. The client secret never appears in errors.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote_plus

import httpx

from vanta.adapters.identity.oidc import OidcError, OidcProvider, read_json
from vanta.application.ports.identity import TokenExchangeError

__all__ = ["OidcTokenExchange", "TokenExchangeError", "client_credentials", "exchange_code"]

_MAX_BODY = 256 * 1024


async def exchange_code(
    provider: OidcProvider,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None = None,
) -> dict[str, Any]:
    """Redeem an authorization code (``grant_type=authorization_code``, PKCE if given)."""
    _require(code=code, redirect_uri=redirect_uri)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        _require(code_verifier=code_verifier)
        form["code_verifier"] = code_verifier
    return await _token_request(provider, client_id, client_secret, form)


async def client_credentials(
    provider: OidcProvider,
    client_id: str,
    client_secret: str,
    scope: str | Iterable[str] | None,
) -> dict[str, Any]:
    """Obtain a token for the client itself (``grant_type=client_credentials``).

    ``scope`` is a space-separated string or an iterable of scopes; None or empty omits it.
    """
    form = {"grant_type": "client_credentials"}
    scopes = scope.split() if isinstance(scope, str) else list(scope or ())
    if not all(isinstance(s, str) and s and not any(c.isspace() for c in s) for s in scopes):
        raise ValueError(f"invalid scope list: {scopes!r}")
    if scopes:
        form["scope"] = " ".join(dict.fromkeys(scopes))
    return await _token_request(provider, client_id, client_secret, form)


class OidcTokenExchange:
    """The application's :class:`~vanta.application.ports.identity.TokenExchange` port: the
    two grants above, against one provider."""

    def __init__(self, provider: OidcProvider) -> None:
        self._provider = provider

    async def exchange_code(self, client_id: str, client_secret: str, code: str,
                            redirect_uri: str, code_verifier: str | None = None
                            ) -> dict[str, Any]:
        return await exchange_code(self._provider, client_id, client_secret, code,
                                   redirect_uri, code_verifier)

    async def client_credentials(self, client_id: str, client_secret: str,
                                 scope: str | Iterable[str] | None) -> dict[str, Any]:
        return await client_credentials(self._provider, client_id, client_secret, scope)


def _require(**values: object) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")


def _basic_auth(client_id: str, client_secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


async def _token_request(
    provider: OidcProvider, client_id: str, client_secret: str, form: dict[str, str]
) -> dict[str, Any]:
    _require(client_id=client_id, client_secret=client_secret)
    try:
        url = await provider.endpoint("token_endpoint")
    except OidcError as e:
        raise TokenExchangeError("discovery_failed", str(e)) from None
    headers = {"Authorization": _basic_auth(client_id, client_secret),
               "Accept": "application/json"}
    try:
        async with asyncio.timeout(provider.timeout * 2):
            async with provider.http.stream("POST", url, data=form, headers=headers,
                                            timeout=provider.timeout,
                                            follow_redirects=False) as response:
                status = response.status_code
                try:
                    body = await read_json(response, "token response", limit=_MAX_BODY)
                except OidcError as e:
                    body = e
    except TimeoutError:
        raise TokenExchangeError("network_error", f"{url}: timed out") from None
    except httpx.HTTPError as e:
        raise TokenExchangeError("network_error", f"{url}: {type(e).__name__}") from None

    if status == 200:
        if (isinstance(body, dict) and isinstance(body.get("access_token"), str)
                and body["access_token"] and isinstance(body.get("token_type"), str)):
            return body
        raise TokenExchangeError("invalid_response",
                                 "200 without access_token/token_type", status=status)
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]:
        description = body.get("error_description")
        raise TokenExchangeError(body["error"],
                                 description if isinstance(description, str) else "",
                                 status=status)
    raise TokenExchangeError("http_error", f"HTTP {status} from the token endpoint",
                             status=status)
