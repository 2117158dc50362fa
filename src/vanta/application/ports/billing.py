"""Billing ports (payment providers, billing repositories): filled in with the billing work."""
