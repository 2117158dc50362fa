"""The JSON log formatter's direct path writes exactly what the structlog processor chain
writes (same keys, same order, same values; only the timestamp's instant differs)."""

from __future__ import annotations

import json
import logging
import sys

import structlog

from vanta.adapters.logs import formatter_for


def _reference() -> structlog.stdlib.ProcessorFormatter:
    """The chain ``configure`` used before the direct path existed."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()])


def _record(msg: str = "request", args: tuple[object, ...] = (), level: int = logging.INFO,
            exc_info: object = None, **extra: object) -> logging.LogRecord:
    return logging.getLogger("vanta.api.requests").makeRecord(
        "vanta.api.requests", level, __file__, 1, msg, args, exc_info,  # type: ignore[arg-type]
        extra=extra or None)


def _same(record: logging.LogRecord) -> dict[str, object]:
    fast = json.loads(formatter_for().format(record))
    ref = json.loads(_reference().format(record))
    assert fast.pop("timestamp").endswith("Z") and ref.pop("timestamp").endswith("Z")
    assert list(fast.items()) == list(ref.items())
    return fast


def test_request_line_matches_the_processor_chain() -> None:
    structlog.contextvars.bind_contextvars(correlation_id="abc-123", other=7)
    try:
        line = _same(_record(method="GET", path="/v1/vaults", status=200, duration_ms=1.5,
                             tenant_id="tnt_a", subject=None))
    finally:
        structlog.contextvars.clear_contextvars()
    assert line == {"event": "request", "correlation_id": "abc-123", "other": 7,
                    "level": "info", "logger": "vanta.api.requests", "method": "GET",
                    "path": "/v1/vaults", "status": 200, "duration_ms": 1.5,
                    "tenant_id": "tnt_a", "subject": None}


def test_args_levels_odd_values_and_colliding_extras_match() -> None:
    _same(_record("took %d ms for %s", (12, "x"), level=logging.WARNING))
    _same(_record(level=logging.ERROR, when=object(), data={"b": [1, 2]}, level_name="x"))
    structlog.contextvars.bind_contextvars(correlation_id="cid", event="bound")
    try:  # an extra or a bound value never replaces the message; extras win over the rest
        _same(_record(correlation_id="from-extra", logger="extra-logger"))
    finally:
        structlog.contextvars.clear_contextvars()
    assert _same(_record())["level"] == "info"


def test_exceptions_still_take_the_general_path() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    line = json.loads(formatter_for().format(_record(exc_info=info)))
    assert "ValueError: boom" in line["exception"] and line["event"] == "request"


def test_a_record_sent_to_two_handlers_is_rendered_once() -> None:
    formatter = formatter_for()
    first, second = _record(fo_id="fo_1"), _record(fo_id="fo_2")
    line = formatter.format(first)
    assert formatter.format(first) is line  # the second handler gets the same string
    other = formatter.format(second)
    assert json.loads(other)["fo_id"] == "fo_2" and json.loads(line)["fo_id"] == "fo_1"
