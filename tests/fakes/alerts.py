"""A mail transport for alerts that keeps what it was given (the ``AlertSender`` port)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vanta.application.ports.alerts import AlertNotSent


@dataclass
class FakeAlertSender:
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (to, subject, text)
    fail_with: str | None = None  # set: every send raises AlertNotSent with this text

    async def send_email(self, to: str, subject: str, text: str) -> None:
        if self.fail_with is not None:
            raise AlertNotSent(self.fail_with)
        self.sent.append((to, subject, text))
