"""PostgreSQL base backups and point-in-time restores with the server's own tools
(``pg_basebackup`` and a restore configuration): what ``vanta ops backup`` and
``vanta ops restore`` run. The WAL between backups is archived by the server itself
(``archive_command``, see docs/operations.md); a restore replays it up to a moment."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


def pg_tool(name: str) -> str:
    """A PostgreSQL client tool: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise BackupError(f"{name} not found (install the PostgreSQL client tools)")
    return found


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    started_at: datetime


def base_backup(database_url: str, to: Path) -> BaseBackup:
    """``pg_basebackup`` of the server behind ``database_url`` into ``to/base-<UTC time>``
    (tar format, with the WAL it needs to be consistent), plus a small manifest."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise BackupError("backups are for PostgreSQL; copy the SQLite file instead")
    started = datetime.now(UTC)
    target = to / f"base-{started:%Y%m%dT%H%M%S%fZ}"
    cmd = [pg_tool("pg_basebackup"), "-h", url.host or "127.0.0.1", "-p",
           str(url.port or 5432), "-U", url.username or "postgres", "-D", str(target),
           "-Ft", "-X", "fetch", "--checkpoint=fast"]
    env = {"PGPASSWORD": url.password} if url.password else {}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False,
                          env={**_base_env(), **env})
    if done.returncode != 0:
        raise BackupError(f"pg_basebackup failed: {done.stderr.strip()[-2000:]}")
    (target / "vanta-backup.json").write_text(json.dumps(
        {"started_at": started.isoformat(), "host": url.host, "port": url.port}, indent=2))
    return BaseBackup(target, started)


def _base_env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def restore(backup: Path, wal_archive: Path, data_dir: Path, target_time: datetime) -> None:
    """Lay ``backup`` out in the empty ``data_dir`` and configure recovery: replay the WAL
    from ``wal_archive`` up to ``target_time`` (inclusive), then open for writes. Start the
    server on ``data_dir`` afterwards (as the user that owns it)."""
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty")
    data_dir.mkdir(parents=True, exist_ok=True)
    _untar(backup / "base.tar", data_dir)
    wal = data_dir / "pg_wal"
    wal.mkdir(exist_ok=True)
    if (backup / "pg_wal.tar").exists():
        _untar(backup / "pg_wal.tar", wal)
    when = target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"\nrestore_command = 'cp {wal_archive}/%f %p'\n"
                   f"recovery_target_time = '{when}'\n"
                   "recovery_target_inclusive = on\n"
                   "recovery_target_action = 'promote'\n"
                   "archive_mode = off\n")
    (data_dir / "recovery.signal").touch()
    data_dir.chmod(0o700)


def _untar(archive: Path, into: Path) -> None:
    # our own server's backup: its paths and modes are kept as they are
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(into, filter="fully_trusted")
        else:  # pragma: no cover - Python before 3.11.4
            tar.extractall(into)


def newest_backup(folder: Path) -> Path:
    found = sorted(p for p in folder.glob("base-*") if (p / "base.tar").exists())
    if not found:
        raise BackupError(f"no base backup in {folder}")
    return found[-1]
