"""``vanta snapshot VAULT``: write the vault's snapshot to the object store now (the scheduler
writes one per interval on its own); ``vanta snapshot-show VAULT --at TIME`` prints the one a
replay of that time starts from. Exit codes: 0 done, 1 the store failed (or has none),
2 refused (unknown vault or tenant, bad time)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vanta.application.clock import utcnow
from vanta.application.ports.objectstore import ObjectStoreError
from vanta.application.vault_snapshots import SnapshotWritten, snapshot_at, take_snapshot
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.domain.errors import DomainError
from vanta.entrypoints.cli.ops_cli import default_actor

console = Console()
err = Console(stderr=True, soft_wrap=True)


async def _snapshot(s: Settings, tenant_id: str, vault_id: str, actor: str) -> SnapshotWritten:
    c = build(s)
    await c.migrate()
    try:
        return await take_snapshot(c.uow, c.object_store(), tenant_id=tenant_id,
                                   vault_id=vault_id, at=utcnow(), reason="manual",
                                   actor=actor)
    finally:
        await c.close()


def snapshot(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    tenant: Annotated[str, typer.Option(help="the vault's tenant id")] = "tnt_demo",
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON line")] = False,
    data_dir: Annotated[Path | None, typer.Option(
        help="Embedded data directory (VANTA_DATA_DIR)")] = None,
) -> None:
    """Write a snapshot of the vault (followers, configurations, positions, NAVs) to the
    object store under an immutable key, and print the key and its SHA-256."""
    s = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        done = asyncio.run(_snapshot(s, tenant, vault_id, default_actor()))
    except DomainError as e:
        err.print(f"[red]vanta: {e.code}: {e.message}[/red]")
        raise typer.Exit(2) from None
    except ObjectStoreError as e:
        err.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"key": done.key, "sha256": done.sha256, "size": done.size}))
    else:
        console.print(f"{done.key}  {done.size} bytes  sha256 {done.sha256}")


async def _show(s: Settings, tenant_id: str, vault_id: str, at: datetime) -> str:
    c = build(s)
    try:
        snap = await snapshot_at(c.object_store(), tenant_id, vault_id, at)
        return json.dumps({"key": snap.key, "sha256": snap.sha256, "snapshot": snap.doc},
                          indent=2, sort_keys=True)
    finally:
        await c.close()


def snapshot_show(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    at: Annotated[str | None, typer.Option(
        help="RFC 3339 time; default now: the latest snapshot")] = None,
    tenant: Annotated[str, typer.Option(help="the vault's tenant id")] = "tnt_demo",
    data_dir: Annotated[Path | None, typer.Option(
        help="Embedded data directory (VANTA_DATA_DIR)")] = None,
) -> None:
    """Print the latest snapshot of the vault taken at or before --at (checked against its
    recorded SHA-256 as it is read)."""
    s = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else utcnow()
    except ValueError:
        err.print(f"[red]vanta: invalid_time: {at!r} is not an RFC 3339 time[/red]")
        raise typer.Exit(2) from None
    if when.tzinfo is None:
        err.print("[red]vanta: invalid_time: give the offset (e.g. Z)[/red]")
        raise typer.Exit(2)
    try:
        print(asyncio.run(_show(s, tenant, vault_id, when)))
    except ObjectStoreError as e:
        err.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("snapshot")(snapshot)
    app.command("snapshot-show")(snapshot_show)
