"""Transports for operator alerts (email over SMTP); webhook alerts use the webhook sender."""
