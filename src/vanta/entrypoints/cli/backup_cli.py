"""``vanta ops backup`` and ``vanta ops restore``: a PostgreSQL base backup into a folder,
and a point-in-time restore from it plus the server's WAL archive (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from vanta.bootstrap.backup import BackupError, base_backup, newest_backup, restore
from vanta.config import Settings

ops_app = typer.Typer(help="Backups and restores of the production database.",
                      no_args_is_help=True)


@ops_app.command("backup")
def backup_command(
    to: Annotated[Path, typer.Option("--to", help="folder that keeps the base backups")],
) -> None:
    """Take a base backup of VANTA_DATABASE_URL (pg_basebackup) into --to/base-<UTC time>."""
    s = Settings()
    if not s.database_url:
        typer.echo("VANTA_DATABASE_URL is not set: the embedded SQLite file is backed up by "
                   "copying it", err=True)
        raise typer.Exit(2)
    try:
        made = base_backup(s.database_url, to)
    except BackupError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    typer.echo(str(made.path))


@ops_app.command("restore")
def restore_command(
    data: Annotated[Path, typer.Option("--data", help="an empty PostgreSQL data folder")],
    wal_archive: Annotated[Path, typer.Option("--wal-archive",
                                              help="where archive_command copies WAL")],
    target_time: Annotated[datetime, typer.Option(
        "--target-time", formats=["%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"],
        help="replay up to this moment (ISO 8601 with an offset)")],
    backup: Annotated[Path | None, typer.Option("--backup", help="a base-* folder")] = None,
    backups: Annotated[Path | None, typer.Option(
        "--from", help="a folder of base backups: the newest is used")] = None,
) -> None:
    """Lay a base backup out in --data, set to replay WAL up to --target-time; start
    PostgreSQL on --data afterwards, then check it with `vanta audit-verify`."""
    try:
        chosen = backup or newest_backup(backups or Path("."))
        restore(chosen, wal_archive, data, target_time)
    except BackupError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{data} restored from {chosen.name}; start PostgreSQL on it")
