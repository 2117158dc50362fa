"""A scripted webhook sender for the :class:`~vanta.application.ports.delivery.WebhookSender`
port.

It records every request and answers from a script per URL, the way
:class:`vanta.adapters.webhooks.sender.AiohttpWebhookSender` reports what a receiver did:

* ``Answer(status, body, retry_after)``: an HTTP answer; the excerpt is the body cut at
  ``excerpt_bytes``, the ``Retry-After`` header value is passed through verbatim;
* ``Answer.timeout()``: no answer within the bound (``error="timeout"``, retryable);
* ``Answer.connection_error()``: refused or reset (``status=None``, retryable);
* ``Answer.refused(reason)``: the target was refused before connecting (terminal);
* ``Answer.raises(exc)``: ``send`` raises ``exc``. The real sender never raises for network
  trouble; this is for testing a caller's guard against an unexpected bug.

A URL's script is a list consumed in order, its last answer repeating; unscripted URLs get
``default`` (a 200). Non-HTTP(S) URLs and URLs with credentials are refused as the real
sender refuses them. The contract suite (``tests/contract/test_sender_contract.py``) runs the
fake and the aiohttp sender against the same scripted answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vanta.application.ports.delivery import SendResult

__all__ = ["Answer", "FakeWebhookSender", "SentRequest"]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None = 200
    body: bytes = b"ok"
    retry_after: str | None = None
    error: str | None = None
    refused: bool = False
    latency_ms: int = 1
    exception: BaseException | None = None

    @classmethod
    def timeout(cls, after_ms: int = 1000) -> Answer:
        return cls(status=None, body=b"", error="timeout", latency_ms=after_ms)

    @classmethod
    def connection_error(cls, detail: str = "ClientConnectorError: connection refused"
                         ) -> Answer:
        return cls(status=None, body=b"", error=detail)

    @classmethod
    def refused_target(cls, reason: str = "private_address") -> Answer:
        return cls(status=None, body=b"", error=f"refused: {reason}", refused=True)

    @classmethod
    def raises(cls, exc: BaseException) -> Answer:
        return cls(exception=exc)


@dataclass(frozen=True, slots=True)
class SentRequest:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeWebhookSender:
    excerpt_bytes: int = 1024
    default: Answer = field(default_factory=Answer)
    requests: list[SentRequest] = field(default_factory=list)
    _scripts: dict[str, list[Answer]] = field(default_factory=dict, init=False)

    def script(self, url: str, *answers: Answer) -> None:
        """Answers for ``url``, in order; the last one repeats."""
        if not answers:
            raise ValueError("script at least one answer")
        self._scripts[url] = list(answers)

    def sent_to(self, url: str) -> list[SentRequest]:
        return [r for r in self.requests if r.url == url]

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        reason = _refusal(url)
        if reason is not None:  # like the real sender: refused before anything is sent
            return SendResult(None, 0, None, f"refused: {reason}", refused=True)
        self.requests.append(SentRequest(url, dict(headers), bytes(body)))
        answer = self._next(url)
        if answer.exception is not None:
            raise answer.exception
        if answer.status is None:
            return SendResult(None, answer.latency_ms, None, answer.error or "no answer",
                              refused=answer.refused)
        excerpt = answer.body[: max(0, self.excerpt_bytes)].decode("utf-8", "replace")
        return SendResult(answer.status, answer.latency_ms, excerpt, None,
                          retry_after=answer.retry_after)

    def _next(self, url: str) -> Answer:
        script = self._scripts.get(url)
        if not script:
            return self.default
        return script.pop(0) if len(script) > 1 else script[0]


def _refusal(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid_url"
    if parts.scheme not in ("http", "https"):
        return "scheme"
    if parts.username is not None or parts.password is not None:
        return "credentials"
    if not parts.hostname:
        return "invalid_url"
    return None
