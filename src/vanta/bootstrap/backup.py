"""Database backups for ``vanta ops backup`` / ``vanta ops restore`` (the adapter runs the
PostgreSQL tools)."""

from vanta.adapters.db.backup import BackupError, base_backup, newest_backup, restore

__all__ = ["BackupError", "base_backup", "newest_backup", "restore"]
