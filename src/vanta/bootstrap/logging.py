"""Process logging: structured JSON lines (see :mod:`vanta.adapters.logs`), the log folder
(``<data_dir>/logs``: ``vanta.log``, ``mirror_dispatch.log``, ``trade_log.jsonl``, rotated
daily), and the request context the API binds to every line it logs while serving a request."""

from __future__ import annotations

from pathlib import Path

from vanta.adapters import logs
from vanta.adapters.logfiles import FileJournal
from vanta.application import observability
from vanta.application.ports.journal import NO_JOURNAL, Journal, LogArchive
from vanta.bootstrap.telemetry import process_tracer

__all__ = ["bind_correlation_id", "bind_trace_id", "clear_context", "configure_logging",
           "journal", "log_archive"]

# The API middleware binds the request's id per request: the adapter's functions as they are
# (no wrapper on that path).
bind_correlation_id = logs.bind_correlation_id
bind_trace_id = logs.bind_trace_id
clear_context = logs.clear_context


def configure_logging(data_dir: Path | None = None, *, level: str = "INFO",
                      keep_days: int = 30, service: str = "vanta") -> None:
    """Once per process (later calls do nothing). With ``data_dir``, lines also go to the
    log folder, and :func:`journal` writes the dispatch and trade logs there; dated files
    older than ``keep_days`` are deleted at rotation. ``service`` names the process in its
    traces (unless ``OTEL_SERVICE_NAME`` does), when tracing is on."""
    logs.configure(level, data_dir=data_dir, keep_days=keep_days)
    observability.install(journal())
    process_tracer(service)


def journal() -> Journal:
    """The dispatch and trade journal of this process: on the log folder when
    :func:`configure_logging` was given one, else nothing (tests, one-shot commands)."""
    folder = logs.log_folder()
    return NO_JOURNAL if folder is None else FileJournal(folder)


def log_archive() -> LogArchive | None:
    return logs.log_folder()
