"""The delivery journal: ``mirror_dispatch.log`` (one JSON line per delivery attempt) and
``trade_log.jsonl`` (one line per child order state change and per fill), both in the log
folder, rotated daily; and the rotated files the roll-up worker ships to the object store.

Lines are buffered by the adapter: a write is a list append; :meth:`Journal.flush` (called
once per dispatch batch) and a timer write them out. The default records nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

__all__ = ["NO_JOURNAL", "Journal", "LogArchive", "NoJournal", "RotatedFile"]


class Journal(Protocol):
    def dispatch_attempt(self, line: Mapping[str, Any]) -> None:
        """One delivery attempt: ids, attempt number, status, latency, error, next retry."""
        ...

    def trade_event(self, line: Mapping[str, Any]) -> None:
        """One child order state change, or one fill."""
        ...

    def flush(self) -> None:
        """Write out what is buffered (the end of a batch)."""
        ...


class NoJournal:
    def dispatch_attempt(self, line: Mapping[str, Any]) -> None:
        pass

    def trade_event(self, line: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass


NO_JOURNAL = NoJournal()


@dataclass(frozen=True, slots=True)
class RotatedFile:
    """A log file closed by the daily rotation: ``name`` is its file name, ``day`` the day
    its lines belong to."""

    name: str
    day: date


class LogArchive(Protocol):
    """The rotated files of one log folder (the roll-up worker's view of it)."""

    def rotated(self) -> Sequence[RotatedFile]:
        """Every rotated file still on disk, oldest day first."""
        ...

    def read(self, name: str) -> bytes: ...

    def delete(self, name: str) -> None: ...
