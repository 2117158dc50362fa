"""Time as a port (kept importable here; the port lives in :mod:`vanta.application.ports.clock`)."""

from vanta.application.ports.clock import Clock, iso, utcnow

__all__ = ["Clock", "iso", "utcnow"]
