"""Structured JSON logs. Every line carries the request's correlation id when there is one
(bound in a context variable by the API middleware), plus whatever ``extra={...}`` fields the
caller passed (``mo_id``, ``fo_id``, ``follower_id`` on the dispatch path). Dispatch lines also
go to ``mirror_dispatch.log`` in the data directory."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import structlog

_CONFIGURED = False


def configure(level: str = "INFO", *, data_dir: Path | None = None, json: bool = True) -> None:
    global _CONFIGURED
    if _CONFIGURED:
        return
    _CONFIGURED = True
    pre_chain: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if json
                                           else structlog.dev.ConsoleRenderer(colors=False))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    root = logging.getLogger()
    root.setLevel(level)
    console = logging.StreamHandler()
    console.setFormatter(formatter)
    root.addHandler(console)
    if data_dir is not None:
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        dispatch_file = logging.handlers.WatchedFileHandler(
            data_dir / "logs" / "mirror_dispatch.log", encoding="utf-8")
        dispatch_file.setFormatter(formatter)
        for name in ("vanta.dispatch", "vanta.brokers"):
            logging.getLogger(name).addHandler(dispatch_file)


def bind_correlation_id(correlation_id: str) -> None:
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()
