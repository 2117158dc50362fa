"""Process logging: structured JSON lines (see :mod:`vanta.adapters.logs`), and the request
context the API binds to every line it logs while serving a request."""

from __future__ import annotations

from pathlib import Path

from vanta.adapters import logs

__all__ = ["bind_correlation_id", "clear_context", "configure_logging"]

# The API middleware binds the request's id per request: the adapter's functions as they are
# (no wrapper on that path).
bind_correlation_id = logs.bind_correlation_id
clear_context = logs.clear_context


def configure_logging(data_dir: Path | None = None, *, level: str = "INFO") -> None:
    """Once per process (later calls do nothing); dispatch lines also go to
    ``<data_dir>/logs/mirror_dispatch.log``."""
    logs.configure(level, data_dir=data_dir)
