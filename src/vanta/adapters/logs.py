"""Structured JSON logs. Every line carries the request's correlation id when there is one
(bound in a context variable by the API middleware), plus whatever ``extra={...}`` fields the
caller passed (``mo_id``, ``fo_id``, ``follower_id`` on the dispatch path), and the current
trace id when tracing is on. With a data directory, every line also goes to
``<data_dir>/logs/vanta.log`` and the dispatcher's and brokers' warnings to
``mirror_dispatch.log`` beside the journal's attempt lines (:mod:`vanta.adapters.logfiles`:
buffered, rotated daily)."""

from __future__ import annotations

import contextvars
import logging
from pathlib import Path
from typing import Any

import structlog
from structlog.contextvars import STRUCTLOG_KEY_PREFIX

from vanta.adapters.logfiles import FolderHandler, LogFolder

_CONFIGURED = False
_FOLDER: list[LogFolder] = []  # the process's log folder, once configure() made it
# the attributes every LogRecord has; anything else on a record came from ``extra={...}``
_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)
_PREFIX_LEN = len(STRUCTLOG_KEY_PREFIX)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """:class:`structlog.stdlib.ProcessorFormatter` over the pre-chain :func:`configure` sets up,
    with the common case done directly: a plain stdlib record without exception or stack info
    (such as the API's one line per request) gives the very same line, without copying the
    record and walking the processor chains. Everything else goes the general way."""

    def __init__(self, *, stamper: structlog.types.Processor,
                 renderer: structlog.types.Processor, **kw: Any) -> None:
        super().__init__(**kw)
        self._stamper = stamper
        self._renderer = renderer
        self._last: tuple[logging.LogRecord | None, str] = (None, "")

    def format(self, record: logging.LogRecord) -> str:
        # A dispatch line goes to the console and to the dispatch log, one handler after the
        # other, both through this formatter: render it once. (One tuple, swapped whole, so
        # a record logged from another thread meanwhile never gets this one's line.)
        last = self._last
        if last[0] is record:
            return last[1]
        line = self._format(record)
        self._last = (record, line)
        return line

    def _format(self, record: logging.LogRecord) -> str:
        attrs = record.__dict__
        if (record.exc_info or record.stack_info or "_logger" in attrs or "_name" in attrs
                or not self.use_get_message or self.pass_foreign_args):
            return super().format(record)
        meth = record.levelname.lower()
        # the same steps as the pre-chain: merge_contextvars, add_log_level, add_logger_name,
        # ExtraAdder, TimeStamper; then remove_processors_meta and the renderer
        ed: dict[str, Any] = {"event": record.getMessage()}
        ctx = contextvars.copy_context()
        for k in ctx:
            if k.name.startswith(STRUCTLOG_KEY_PREFIX):
                v = ctx[k]
                if v is not Ellipsis:
                    ed.setdefault(k.name[_PREFIX_LEN:], v)
        ed["level"] = structlog.stdlib.add_log_level(None, meth, {})["level"]
        ed["logger"] = record.name
        for key, value in attrs.items():
            if key not in _RECORD_KEYS:
                ed[key] = value
        ed = self._stamper(None, meth, ed)
        ed.pop("_record", None)
        ed.pop("_from_structlog", None)
        return self._renderer(None, meth, ed)  # type: ignore[no-any-return]


def configure(level: str = "INFO", *, data_dir: Path | None = None, json: bool = True,
              keep_days: int = 30) -> None:
    global _CONFIGURED
    if _CONFIGURED:
        return
    _CONFIGURED = True
    root = logging.getLogger()
    root.setLevel(level)
    formatter = formatter_for(json=json)
    console = logging.StreamHandler()
    console.setFormatter(formatter)
    root.addHandler(console)
    if data_dir is not None:
        folder = LogFolder(data_dir / "logs", max_days=keep_days)
        folder.start()
        _FOLDER.append(folder)
        json_formatter = formatter if json else formatter_for(json=True)
        everything = FolderHandler(folder.process, folder.clock)
        everything.setFormatter(json_formatter)
        root.addHandler(everything)
        # attempts are the journal's lines; warnings and alerts of the path join them
        dispatch = FolderHandler(folder.dispatch, folder.clock)
        dispatch.setLevel(logging.WARNING)
        dispatch.setFormatter(json_formatter)
        for name in ("vanta.dispatch", "vanta.brokers"):
            logging.getLogger(name).addHandler(dispatch)


def log_folder() -> LogFolder | None:
    """The folder :func:`configure` writes to, if it was given a data directory."""
    return _FOLDER[0] if _FOLDER else None


def formatter_for(*, json: bool = True) -> logging.Formatter:
    """The formatter :func:`configure` gives its handlers (JSON lines, or console text)."""
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    pre_chain: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        stamper,
    ]
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if json
                                           else structlog.dev.ConsoleRenderer(colors=False))
    return _Formatter(
        stamper=stamper, renderer=renderer,
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])


def bind_correlation_id(correlation_id: str) -> None:
    # request_id: the name the observability spec uses for the same id
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id,
                                           request_id=correlation_id)


def bind_trace_id(trace_id: str | None) -> None:
    if trace_id is not None:
        structlog.contextvars.bind_contextvars(trace_id=trace_id)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()
