"""Signers and signature verifiers (``vanta.application.ports.signing``)."""
