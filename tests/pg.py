"""Throwaway PostgreSQL databases for tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


def _with_db(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, p.fragment))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def temp_database(url: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"vanta_t_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_db(url, name)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def pg_tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = 'public'")
    finally:
        await conn.close()
    return {r["table_name"] for r in rows} - {"alembic_version"}


async def pg_column_type(url: str, table: str, column: str) -> str:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return str(await conn.fetchval(
            "SELECT data_type FROM information_schema.columns WHERE table_schema='public' "
            "AND table_name=$1 AND column_name=$2", table, column))
    finally:
        await conn.close()
