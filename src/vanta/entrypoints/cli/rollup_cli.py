"""``vanta worker rollup``: ship the log folder's rotated files to the object store with a
SHA-256 manifest per day, and delete local copies past the retention (see
:mod:`vanta.application.log_rollup`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from vanta.application.log_rollup import RollupResult, roll_up_logs
from vanta.application.ports.journal import LogArchive
from vanta.application.ports.objectstore import ObjectStore
from vanta.bootstrap.logging import configure_logging, log_archive
from vanta.bootstrap.stores import build_object_store
from vanta.config import Settings
from vanta.entrypoints.cli import event_loop
from vanta.entrypoints.cli.commands import stop_on_signals

log = logging.getLogger("vanta.rollup")


def host_segment(name: str | None = None) -> str:
    """This machine's name as one object-key segment."""
    raw = name or socket.gethostname() or "host"
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw).lstrip(".") or "host"


async def rollup_pass(archive: LogArchive, store: ObjectStore, s: Settings, host: str,
                      now: datetime | None = None) -> RollupResult:
    result = await roll_up_logs(archive, store, host=host, now=now or datetime.now(UTC),
                                keep_days=s.log_retention_days)
    log.info("log roll-up pass", extra={"manifests": result.manifests,
                                        "uploaded": len(result.uploaded),
                                        "deleted": len(result.deleted)})
    for problem in result.problems:
        log.error("log roll-up problem", extra={"problem": problem})
    return result


async def run_rollup(s: Settings, *, once: bool, every_s: float, host: str | None,
                     stop: asyncio.Event | None = None) -> RollupResult:
    configure_logging(s.data_dir, keep_days=s.log_max_days, service="vanta-rollup")
    archive = log_archive()
    assert archive is not None  # configured with a data directory just above
    store = build_object_store(s)
    seg = host_segment(host)
    if once:
        return await rollup_pass(archive, store, s, seg)
    stop = stop or stop_on_signals()
    result = RollupResult()
    while not stop.is_set():
        try:
            result = await rollup_pass(archive, store, s, seg)
        except Exception:  # the store is away: try again next time
            log.exception("log roll-up pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    return result


def rollup_command(
    once: Annotated[bool, typer.Option(help="one pass, then exit")] = False,
    every_seconds: Annotated[float, typer.Option(help="time between passes")] = 3600.0,
    host: Annotated[str | None, typer.Option(
        help="the host segment of the object keys (default: this machine's name)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory (VANTA_DATA_DIR)")
                        ] = None,
) -> None:
    """Upload rotated log files (mirror_dispatch, trade_log, vanta) with a SHA-256 manifest
    per day, and delete local copies older than VANTA_LOG_RETENTION_DAYS once stored."""
    s = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    result = event_loop.run(run_rollup(s, once=once, every_s=every_seconds, host=host),
                            s.event_loop, gc_young_threshold=s.gc_young_threshold)
    if once:
        typer.echo(f"manifests written: {len(result.manifests)}, files uploaded: "
                   f"{len(result.uploaded)}, local files deleted: {len(result.deleted)}")
        for p in result.problems:
            typer.echo(f"problem: {p}", err=True)
        if result.problems:
            raise typer.Exit(1)
