"""The log folder's files: buffered JSON lines, one UTC day per file, rotation at the first
line (or timer pass) of a new day on an injectable clock, and a hard bound on dated files."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.fakes.clock import FakeClock
from vanta.adapters.logfiles import FileJournal, FolderHandler, LogFolder
from vanta.adapters.logs import formatter_for

DAY1 = datetime(2026, 3, 1, 23, 59, 58, tzinfo=UTC)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def _folder(tmp_path: Path, clock: FakeClock, **kw: object) -> LogFolder:
    return LogFolder(tmp_path / "logs", clock=clock, **kw)  # type: ignore[arg-type]


def test_attempt_lines_are_buffered_until_flushed_then_one_json_object_each(
        tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock)
    j = FileJournal(folder)
    for n in (1, 2):
        j.dispatch_attempt({"mo_id": "mo", "fo_id": "fo", "follower_id": "f", "attempt": n,
                            "outcome": "retry", "status": 503, "latency_ms": 12,
                            "error": "HTTP 503", "next_retry_at": "2026-03-02T00:00:01+00:00",
                            "trace_id": None})
    assert not folder.dispatch.path.exists()  # nothing written per line
    j.flush()
    lines = _lines(folder.dispatch.path)
    assert [ln["attempt"] for ln in lines] == [1, 2]
    assert lines[0]["event"] == "delivery attempt"
    assert lines[0]["timestamp"] == "2026-03-01T23:59:58Z"
    assert {"mo_id", "fo_id", "follower_id", "status", "latency_ms", "error",
            "next_retry_at", "trace_id"} <= set(lines[0])


def test_a_full_buffer_is_written_without_waiting_for_a_flush(tmp_path: Path) -> None:
    folder = _folder(tmp_path, FakeClock(DAY1), capacity=3)
    j = FileJournal(folder)
    for i in range(3):
        j.trade_event({"event": "state", "fo_id": str(i), "from": None, "to": "pending"})
    assert len(_lines(folder.trades.path)) == 3


def test_the_first_line_of_a_new_day_rotates_the_file_to_its_dated_name(tmp_path: Path
                                                                         ) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock)
    j = FileJournal(folder)
    j.trade_event({"event": "fill", "fo_id": "a"})
    j.flush()
    clock.advance(5)  # past midnight
    j.trade_event({"event": "fill", "fo_id": "b"})
    j.flush()
    dated = folder.path / "trade_log.2026-03-01.jsonl"
    assert [ln["fo_id"] for ln in _lines(dated)] == ["a"]
    assert [ln["fo_id"] for ln in _lines(folder.trades.path)] == ["b"]
    assert [r.name for r in folder.rotated()] == ["trade_log.2026-03-01.jsonl"]


def test_one_buffer_spanning_midnight_splits_by_day(tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock)
    j = FileJournal(folder)
    j.dispatch_attempt({"attempt": 1})
    clock.advance(5)
    j.dispatch_attempt({"attempt": 2})
    j.flush()
    assert [ln["attempt"] for ln in _lines(folder.path / "mirror_dispatch.2026-03-01.log")] \
        == [1]
    assert [ln["attempt"] for ln in _lines(folder.dispatch.path)] == [2]


def test_a_quiet_file_is_rotated_by_the_timer_pass_and_restarts_are_honoured(
        tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock)
    FileJournal(folder).dispatch_attempt({"attempt": 1})
    folder.flush()
    # a new process on the same folder, a day later: the day is read from the first line
    clock.advance(86_400)
    again = _folder(tmp_path, clock)
    again.flush()  # what the timer thread does every second
    assert not again.dispatch.path.exists()
    assert (again.path / "mirror_dispatch.2026-03-01.log").exists()


def test_dated_files_past_the_bound_are_deleted_at_rotation(tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock, max_days=2)
    j = FileJournal(folder)
    for _ in range(5):
        j.trade_event({"event": "fill"})
        j.flush()
        clock.advance(86_400)
    j.trade_event({"event": "fill"})
    j.flush()
    days = [r.day for r in folder.rotated()]
    today = clock().date()
    assert days and min(days) >= today - timedelta(days=2)
    assert date(2026, 3, 1) not in days


def test_logger_records_go_through_the_folder_handler(tmp_path: Path) -> None:
    clock = FakeClock(DAY1)
    folder = _folder(tmp_path, clock)
    handler = FolderHandler(folder.process, clock)
    handler.setFormatter(formatter_for())
    logger = logging.getLogger("vanta.test.folder")
    logger.addHandler(handler)
    try:
        logger.warning("hello", extra={"mo_id": "m1"})
    finally:
        logger.removeHandler(handler)
    folder.flush()
    [line] = _lines(folder.process.path)
    assert (line["event"], line["mo_id"], line["level"]) == ("hello", "m1", "warning")


def test_only_rotated_names_can_be_read_or_deleted(tmp_path: Path) -> None:
    folder = _folder(tmp_path, FakeClock(DAY1))
    for bad in ("../x", "mirror_dispatch.log", "trade_log.2026-03-01.jsonl/../../x"):
        for op in (folder.read, folder.delete):
            try:
                op(bad)
            except ValueError:
                continue
            raise AssertionError(f"{bad} accepted")
