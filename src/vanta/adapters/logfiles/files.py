"""Buffered, daily-rotated JSON-lines files.

Writing a line is a list append under a lock: nothing touches the disk in the hot path. A
file's buffer is written out by ``flush()`` (the dispatcher calls it once per batch), when it
holds ``capacity`` lines, and by the folder's timer thread every ``interval`` seconds, so a
quiet process still gets its lines on disk within a second. Each flush is one ``write`` in
append mode (several processes may share a folder: appends of whole buffers do not interleave
inside a line).

Rotation: the active file (``mirror_dispatch.log``) holds one UTC day, the day of its first
line. The first flush of a line of a later day moves it to its dated name
(``mirror_dispatch.2026-12-05.log``) — by a hard link then an unlink, so of two processes
rotating at once only one succeeds and the other sees the new day's file — and starts a new
one. The day comes from an injectable clock. Dated files older than ``max_days`` are deleted
at rotation, whether or not they were rolled up (a hard bound on disk use); the roll-up
worker deletes uploaded ones sooner (``keep_days``)."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vanta.application.ports.journal import RotatedFile

__all__ = ["DailyFile", "FileJournal", "FolderHandler", "LogFolder"]

Clock = Callable[[], datetime]
ACTIVE_NAMES = ("mirror_dispatch.log", "trade_log.jsonl", "vanta.log")
_DATED = re.compile(r"^(mirror_dispatch|trade_log|vanta)\.(\d{4}-\d{2}-\d{2})\.(log|jsonl)$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DailyFile:
    def __init__(self, folder: Path, name: str, *, capacity: int = 4096,
                 max_days: int = 30) -> None:
        self.folder = folder
        self.name = name
        self.path = folder / name
        self.stem, _, self.ext = name.partition(".")
        self.capacity = capacity
        self.max_days = max_days
        self._buf: list[tuple[date, str]] = []
        self._lock = threading.Lock()  # guards the buffer
        self._io = threading.Lock()  # one flush at a time
        self._active: date | None = None

    def dated_name(self, day: date) -> str:
        return f"{self.stem}.{day.isoformat()}.{self.ext}"

    def append(self, line: str, day: date) -> None:
        with self._lock:
            self._buf.append((day, line))
            full = len(self._buf) >= self.capacity
        if full:
            self.flush()

    def flush(self) -> None:
        with self._io:
            with self._lock:
                buf, self._buf = self._buf, []
            for day, group in itertools.groupby(buf, key=lambda item: item[0]):
                self._write(day, "".join(line + "\n" for _, line in group))

    def roll(self, today: date) -> None:
        """Rotate an active file of an earlier day even when nothing is written (so a quiet
        file is ready for the roll-up the next day, like the busy ones)."""
        with self._io:
            active = self._active if self._active is not None else self._file_day()
            if active is not None and today > active:
                active = self._file_day()
                if active is not None and today > active:
                    self._rotate(active)
                    self._prune(today)
                    active = None
            self._active = active  # known now: the next passes read nothing

    def _write(self, day: date, text: str) -> None:
        active = self._active if self._active is not None else self._file_day()
        if active is not None and day > active:
            active = self._file_day()  # another process may have rotated meanwhile
            if active is not None and day > active:
                self._rotate(active)
                self._prune(day)
        elif active is not None and day < active:
            # a line of an earlier day flushed after the rotation: it joins its own day
            with open(self.folder / self.dated_name(day), "a", encoding="utf-8") as f:
                f.write(text)
            return
        self._active = day
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)

    def _file_day(self) -> date | None:
        """The day of the active file: the timestamp of its first line."""
        try:
            with open(self.path, encoding="utf-8") as f:
                first = f.readline()
        except FileNotFoundError:
            return None
        try:
            return date.fromisoformat(str(json.loads(first)["timestamp"])[:10])
        except (ValueError, KeyError, TypeError):
            return None  # empty or foreign: keep appending to it

    def _rotate(self, day: date) -> None:
        dst = self.folder / self.dated_name(day)
        try:
            os.link(self.path, dst)
        except FileExistsError:  # that day was rotated before: add these lines to it
            with open(dst, "ab") as out, open(self.path, "rb") as src:
                out.write(src.read())
        except FileNotFoundError:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.max_days)
        for p in self.folder.iterdir():
            m = _DATED.match(p.name)
            if m and m.group(1) == self.stem and date.fromisoformat(m.group(2)) < oldest:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


class LogFolder:
    """The three files of a log folder, their flush timer, and the
    :class:`~vanta.application.ports.journal.LogArchive` view of their rotated files."""

    def __init__(self, path: Path, *, clock: Clock = _utcnow, interval: float = 1.0,
                 capacity: int = 4096, max_days: int = 30) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self.interval = interval
        kw: dict[str, Any] = {"capacity": capacity, "max_days": max_days}
        self.dispatch = DailyFile(path, "mirror_dispatch.log", **kw)
        self.trades = DailyFile(path, "trade_log.jsonl", **kw)
        self.process = DailyFile(path, "vanta.log", **kw)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def files(self) -> tuple[DailyFile, ...]:
        return self.dispatch, self.trades, self.process

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vanta-log-flush",
                                            daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        today = self.clock().date()
        for f in self.files():
            try:
                f.flush()
                f.roll(today)
            except OSError:  # a full or missing disk must not stop the process
                logging.getLogger("vanta.logs").exception("log flush failed")

    def close(self) -> None:
        self._stop.set()
        self.flush()

    # LogArchive
    def rotated(self) -> Sequence[RotatedFile]:
        out = []
        for p in self.path.iterdir():
            m = _DATED.match(p.name)
            if m:
                out.append(RotatedFile(p.name, date.fromisoformat(m.group(2))))
        return sorted(out, key=lambda r: (r.day, r.name))

    def _checked(self, name: str) -> Path:
        if not _DATED.match(name):
            raise ValueError(f"not a rotated log file: {name!r}")
        return self.path / name

    def read(self, name: str) -> bytes:
        return self._checked(name).read_bytes()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._checked(name).unlink()


# one encoder for every line: json.dumps with options builds a new one per call
_encode = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False).encode


def _stamp(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


class FileJournal:
    """The application's :class:`~vanta.application.ports.journal.Journal` on a log folder."""

    def __init__(self, folder: LogFolder) -> None:
        self.folder = folder

    def dispatch_attempt(self, line: Mapping[str, Any]) -> None:
        now = self.folder.clock()
        self.folder.dispatch.append(
            _encode({"timestamp": _stamp(now), "event": "delivery attempt", **line}),
            now.date())

    def trade_event(self, line: Mapping[str, Any]) -> None:
        """``line["event"]`` names it (``state`` or ``fill``); ``state`` when missing."""
        now = self.folder.clock()
        self.folder.trades.append(
            _encode({"timestamp": _stamp(now), "event": "state", **line}), now.date())

    def flush(self) -> None:
        self.folder.dispatch.flush()
        self.folder.trades.flush()


class FolderHandler(logging.Handler):
    """A logging handler appending formatted records to one of the folder's files."""

    def __init__(self, file: DailyFile, clock: Clock) -> None:
        super().__init__()
        self.file = file
        self.clock = clock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.file.append(self.format(record), self.clock().date())
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.file.flush()
