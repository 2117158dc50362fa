"""Outgoing mail adapters: SMTP (aiosmtplib) and a local outbox folder."""
