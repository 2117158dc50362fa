"""Fakes of the journal ports (:mod:`vanta.application.ports.journal`).

:class:`RecordingJournal` keeps every line in memory, in order, with the flushes between
them; :class:`MemoryLogArchive` is a log folder's rotated files as a dictionary.
``tests/contract/test_journal_contract.py`` holds them to the file adapters
(:mod:`vanta.adapters.logfiles`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from vanta.application.ports.journal import RotatedFile

__all__ = ["MemoryLogArchive", "RecordingJournal"]

_DATED = re.compile(r"^(mirror_dispatch|trade_log|vanta)\.(\d{4}-\d{2}-\d{2})\.(log|jsonl)$")


class RecordingJournal:
    def __init__(self) -> None:
        self.dispatch: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.flushes = 0
        self.unflushed = 0  # lines written since the last flush

    def dispatch_attempt(self, line: Mapping[str, Any]) -> None:
        self.dispatch.append({"event": "delivery attempt", **line})
        self.unflushed += 1

    def trade_event(self, line: Mapping[str, Any]) -> None:
        self.trades.append(dict(line))
        self.unflushed += 1

    def flush(self) -> None:
        self.flushes += 1
        self.unflushed = 0

    def moves(self, fo_id: str) -> list[tuple[str | None, str]]:
        """The child's state changes in the trade log, in order."""
        return [(t["from"], t["to"]) for t in self.trades
                if t.get("fo_id") == fo_id and t.get("event") == "state"]


class MemoryLogArchive:
    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = dict(files or {})

    def rotated(self) -> Sequence[RotatedFile]:
        out = []
        for name in self.files:
            m = _DATED.match(name)
            if m:
                out.append(RotatedFile(name, date.fromisoformat(m.group(2))))
        return sorted(out, key=lambda r: (r.day, r.name))

    def read(self, name: str) -> bytes:
        if not _DATED.match(name):
            raise ValueError(f"not a rotated log file: {name!r}")
        return self.files[name]

    def delete(self, name: str) -> None:
        if not _DATED.match(name):
            raise ValueError(f"not a rotated log file: {name!r}")
        self.files.pop(name, None)
