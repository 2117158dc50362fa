"""``vanta reconcile VAULT [--apply]`` and ``vanta worker reconcile``.

The command runs one reconciliation (a dry run unless ``--apply``) through the same use case
as ``POST /v1/vaults/{id}/reconcile``, with a progress bar while follower positions are read
and a table of what drifted and what was (or would be) done. The worker runs every vault on
an interval (``VANTA_RECONCILE_INTERVAL_SECONDS``), applying fix-ups unless ``--dry-run``;
SIGTERM/SIGINT lets the vault in progress finish, then it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vanta.application.reconcile import reconcile_vault
from vanta.bootstrap import Container, build
from vanta.bootstrap.logging import configure_logging
from vanta.config import Settings
from vanta.domain.errors import Conflict, DomainError
from vanta.entrypoints.cli import event_loop
from vanta.entrypoints.cli.commands import stop_on_signals
from vanta.entrypoints.cli.ops_cli import Actor, DataDir, Tenant, default_actor
from vanta.entrypoints.cli.progress import Report, progress_bar

log = logging.getLogger("vanta.reconcile")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


async def _run_once(c: Container, tenant_id: str, vault_id: str, *, apply: bool, actor: str,
                    progress: Report | None = None) -> dict[str, Any]:
    report = await reconcile_vault(
        c.uow, c.dispatcher.brokers, tenant_id=tenant_id, vault_id=vault_id,
        dry_run=not apply, actor=actor, settings=c.reconcile_settings(),
        metrics=c.reconcile_metrics, progress=progress)
    return report


async def _reconcile(s: Settings, tenant_id: str, vault_id: str, apply: bool,
                     actor: str) -> dict[str, Any]:
    c = build(s)
    await c.migrate()
    try:
        with progress_bar(err, f"reading brokers of {vault_id}'s followers") as report:
            return await _run_once(c, tenant_id, vault_id, apply=apply, actor=actor,
                                   progress=report)
    finally:
        await c.close()


def report_table(report: dict[str, Any]) -> Table:
    """One row per drift that is over its threshold or has an action, and one per finding."""
    title = f"reconciliation {report['id']} of {report['vault_id']}" + \
        (" (dry run)" if report["dry_run"] else "")
    t = Table(title=title)
    for col in ("follower", "symbol", "target", "held", "pending", "drift", "bps", "action"):
        t.add_column(col, justify="right" if col in ("target", "held", "pending", "drift",
                                                     "bps") else "left")
    fixes = {(f["follower_id"], f["symbol"]): f for f in report["fixups"]}
    blocks = {(b["follower_id"], b["symbol"]): b for b in report["blocked"]}
    for d in report["drifts"]:
        key = (d["follower_id"], d["symbol"])
        parts = []
        if key in fixes:
            f = fixes[key]
            parts.append(f"{f['side']} {f['qty']}" + ("" if report["dry_run"] else " sent"))
        if key in blocks:
            parts.append(f"blocked: {blocks[key]['reason']}")
        if not parts and not d["over_threshold"]:
            continue
        t.add_row(d["follower_id"], d["symbol"], d["target"], d["held"], d["pending"],
                  d["drift_qty"], d["drift_bps"] or "-", ", ".join(parts) or "-")
    for f in report["findings"]:
        t.add_row(f["follower_id"], "-", "-", "-", "-", "-", "-", f"{f['kind']}: {f['detail']}")
    return t


def reconcile_command(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    apply: Annotated[bool, typer.Option("--apply", help="dispatch the fix-ups (default: a "
                                                        "dry run that only reports)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    tenant: Tenant = "tnt_demo", actor: Actor = None, data_dir: DataDir = None,
) -> None:
    """Show each follower's drift from the manager's positions; --apply sends the fix-ups.

    A dry run by default. Fix-ups go through the normal outbox and are audited."""
    try:
        report = asyncio.run(_reconcile(_settings(data_dir), tenant, vault_id, apply,
                                        actor or default_actor()))
    except DomainError as e:
        err.print(f"[red]vanta: {e.code}: {e.message}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report))
        return
    console.print(report_table(report))
    s = report["summary"]
    console.print(f"{s['drifts_over_threshold']} over threshold, {s['fixups']} fix-up(s) "
                  f"{'planned' if report['dry_run'] else 'sent'}, {s['blocked']} blocked, "
                  f"{s['findings']} finding(s); report id {report['id']}")


async def reconcile_all(c: Container, *, apply: bool, actor: str = "reconciler") -> int:
    """One pass over every vault; the runs made. A vault in maintenance is skipped."""
    async with c.uow() as uow:
        vaults = await uow.reconciliations.all_vaults()
    runs = 0
    for tenant_id, vault_id in vaults:
        try:
            report = await _run_once(c, tenant_id, vault_id, apply=apply, actor=actor)
        except Conflict as e:  # maintenance: nothing is read or sent
            log.info("vault skipped", extra={"vault_id": vault_id, "reason": e.code})
            continue
        except Exception:
            log.exception("reconciliation failed", extra={"vault_id": vault_id})
            continue
        runs += 1
        if report["fixups"] and apply:
            c.outbox_written.set()
        log.info("vault reconciled", extra={"vault_id": vault_id, "run": report["id"],
                                            **report["summary"]})
    return runs


async def run_reconcile_worker(s: Settings, *, apply: bool = True, migrate: bool = False,
                               stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    configure_logging(s.data_dir, keep_days=s.log_max_days, service="vanta-reconcile")
    c = build(s)
    if migrate:
        await c.migrate()
    log.info("reconcile worker running", extra={"interval_s": s.reconcile_interval_seconds,
                                                "apply": apply})
    try:
        while not stop.is_set():
            await reconcile_all(c, apply=apply)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.reconcile_interval_seconds)
    finally:
        await c.close()


def worker_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; send no fix-ups")]
    = False,
    migrate: Annotated[bool, typer.Option(help="apply database migrations first")] = False,
    data_dir: DataDir = None,
) -> None:
    """Reconcile every vault on an interval, sending fix-ups; SIGTERM stops it cleanly.

    The interval is VANTA_RECONCILE_INTERVAL_SECONDS; the vault in progress finishes first."""
    s = _settings(data_dir)
    event_loop.run(run_reconcile_worker(s, apply=not dry_run, migrate=migrate), s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


def register(app: typer.Typer, workers: typer.Typer) -> None:
    app.command("reconcile")(reconcile_command)
    workers.command("reconcile")(worker_command)
