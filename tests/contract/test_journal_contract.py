"""The journal ports' contract (:mod:`vanta.application.ports.journal`), run on the fakes
(``tests/fakes/journal.py``) and the log folder's files (:mod:`vanta.adapters.logfiles`):
lines come back in order with their fields once flushed; a folder lists its rotated files by
day, reads them, deletes them, and refuses any other name."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.journal import MemoryLogArchive, RecordingJournal
from vanta.adapters.logfiles import FileJournal, LogFolder
from vanta.application.ports.journal import Journal, LogArchive

Reader = Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]


@pytest.fixture(params=["fake", "files"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Journal, Reader]:
    if request.param == "fake":
        fake = RecordingJournal()
        return fake, lambda: (fake.dispatch, fake.trades)
    folder = LogFolder(tmp_path / "logs", clock=FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))

    def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        def lines(p: Path) -> list[dict[str, Any]]:
            return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
        return lines(folder.dispatch.path), lines(folder.trades.path)
    return FileJournal(folder), read


def test_lines_come_back_in_order_with_their_fields(journal: tuple[Journal, Reader]) -> None:
    j, read = journal
    j.dispatch_attempt({"fo_id": "a", "attempt": 1, "status": 503, "next_retry_at": "t"})
    j.trade_event({"event": "state", "fo_id": "a", "from": "pending", "to": "sent"})
    j.dispatch_attempt({"fo_id": "a", "attempt": 2, "status": 200, "next_retry_at": None})
    j.trade_event({"event": "fill", "fo_id": "a", "qty": "1"})
    j.flush()
    dispatch, trades = read()
    assert [(d["event"], d["attempt"], d["status"], d["next_retry_at"]) for d in dispatch] \
        == [("delivery attempt", 1, 503, "t"), ("delivery attempt", 2, 200, None)]
    assert [(t["event"], t["fo_id"]) for t in trades] == [("state", "a"), ("fill", "a")]
    assert trades[0]["from"] == "pending" and trades[0]["to"] == "sent"


NAMES = ("mirror_dispatch.2026-03-02.log", "trade_log.2026-03-01.jsonl",
         "vanta.2026-03-02.log")


@pytest.fixture(params=["fake", "files"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> LogArchive:
    if request.param == "fake":
        return MemoryLogArchive({n: n.encode() for n in NAMES} | {"trade_log.jsonl": b"x"})
    folder = LogFolder(tmp_path / "logs")
    for n in (*NAMES, "trade_log.jsonl"):
        (folder.path / n).write_bytes(n.encode())
    return folder


def test_rotated_files_are_listed_by_day_read_and_deleted(archive: LogArchive) -> None:
    got = archive.rotated()
    assert [(r.day, r.name) for r in got] == [
        (date(2026, 3, 1), "trade_log.2026-03-01.jsonl"),
        (date(2026, 3, 2), "mirror_dispatch.2026-03-02.log"),
        (date(2026, 3, 2), "vanta.2026-03-02.log")]
    assert archive.read("vanta.2026-03-02.log") == b"vanta.2026-03-02.log"
    archive.delete("vanta.2026-03-02.log")
    archive.delete("vanta.2026-03-02.log")  # again: nothing to do
    assert "vanta.2026-03-02.log" not in [r.name for r in archive.rotated()]


@pytest.mark.parametrize("name", ["trade_log.jsonl", "../vanta.2026-03-02.log", "x.log"])
def test_other_names_are_refused(archive: LogArchive, name: str) -> None:
    with pytest.raises(ValueError):
        archive.read(name)
    with pytest.raises(ValueError):
        archive.delete(name)
