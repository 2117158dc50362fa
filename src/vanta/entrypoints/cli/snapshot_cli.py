"""``vanta snapshot VAULT``: write the vault's snapshot to the object store now (the scheduler
writes one per interval on its own). Exit codes: 0 written, 1 the store failed, 2 refused
(unknown vault or tenant)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vanta.application.clock import utcnow
from vanta.application.ports.objectstore import ObjectStoreError
from vanta.application.vault_snapshots import SnapshotWritten, take_snapshot
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


def register(app: typer.Typer) -> None:
    app.command("snapshot")(snapshot)
