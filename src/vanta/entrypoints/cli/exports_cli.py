"""``vanta export …``: the audit log, the trade log and dead letters to the object store.

The store is S3 (any S3-compatible endpoint) when a bucket is configured
(``VANTA_S3_BUCKET``, with ``VANTA_S3_ENDPOINT``, ``VANTA_S3_REGION``, ``VANTA_S3_PREFIX`` and
the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``), else a local directory,
``<data_dir>/objects``. Exit codes: 0 done (or already done), 1 refused or failed, 2 bad input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from vanta.application.exports import Exporter, ExportResult, VerifyReport
from vanta.application.ports.objectstore import ObjectStoreError
from vanta.bootstrap.stores import build_object_store
from vanta.config import Settings
from vanta.domain.errors import DomainError

T = TypeVar("T")

exports_app = typer.Typer(
    help="Export the audit log, trade log and dead letters to the object store "
         "(local directory, or S3 when VANTA_S3_BUCKET is set).",
    no_args_is_help=True)
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]
Day = Annotated[str, typer.Option("--date", help="the UTC day, YYYY-MM-DD")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                 param_hint="--date") from None


async def _with_exporter(s: Settings, work: Callable[[Exporter], Awaitable[T]]) -> T:
    from vanta.bootstrap import build
    c = build(s)
    store = build_object_store(s)
    try:
        await c.migrate()
        return await work(Exporter(c.uow, store))
    finally:
        close: Any = getattr(store, "close", None)
        if close is not None:
            await close()
        await c.close()


def _run(s: Settings, work: Callable[[Exporter], Awaitable[T]]) -> T:
    try:
        # one object per command, not a loop over items: a spinner, not a bar
        with console.status("exporting…"):
            return asyncio.run(_with_exporter(s, work))
    except DomainError as e:
        console.print(f"[red]refused ({e.code}): {e.message}[/red]")
        raise typer.Exit(1) from None
    except ObjectStoreError as e:
        console.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None


def _report(result: ExportResult, what: str) -> None:
    for ref in result.objects:
        state = "written" if ref.created else "unchanged (already exported)"
        console.print(f"{ref.key}  {ref.size} bytes  sha256 {ref.sha256[:16]}…  {state}")
    console.print(f"{what}: {result.count}")


@exports_app.command("audit")
def export_audit(date_: Day, data_dir: DataDir = None) -> None:
    """Verify the audit chain and export one day's events with a manifest."""
    day = _day(date_)
    res = _run(_settings(data_dir), lambda ex: ex.export_audit(day))
    _report(res, "audit events")


@exports_app.command("trade-log")
def export_trade_log(date_: Day, data_dir: DataDir = None) -> None:
    """Roll up one day's child orders (with their fills) into the trade log."""
    day = _day(date_)
    res = _run(_settings(data_dir), lambda ex: ex.rollup_trade_log(day))
    _report(res, "child orders")


@exports_app.command("dlx")
def export_dlx(
    tenant: Annotated[str, typer.Option(help="tenant id")] = "tnt_demo",
    data_dir: DataDir = None,
) -> None:
    """Archive a snapshot of the tenant's dead letters (mirror_dispatch_dlx)."""
    res = _run(_settings(data_dir), lambda ex: ex.archive_dead_letters(tenant))
    _report(res, "dead letters")


@exports_app.command("verify")
def export_verify(
    date_: Day,
    database: Annotated[bool, typer.Option(
        help="also compare with the database's audit chain")] = True,
    data_dir: DataDir = None,
) -> None:
    """Re-read one day's exports and check their manifests, hashes and chain."""
    day = _day(date_)
    report: VerifyReport = _run(_settings(data_dir), lambda ex: ex.verify_export(
        day, check_database=database))
    for line in report.checked:
        console.print(f"ok  {line}")
    for p in report.problems:
        console.print(f"[red]BAD {p}[/red]")
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"exports of {day} verified")
