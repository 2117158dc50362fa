"""Async engine construction; SQLite gets WAL and writer serialization."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vanta.adapters.db import sqlite_driver
from vanta.application.ports.uow import Busy, Conflict

# Set on a connection's info by any statement that writes the vaults table; the unit of work
# reads it after commit to invalidate the vault cache (vanta.application.vault_cache).
VAULTS_WRITTEN = "vanta_vaults_written"
_WRITES_VAULTS = re.compile(
    r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)'
    r'\s+(?:"?\w+"?\.)?"?vaults"?(?:\s|\(|$)', re.IGNORECASE)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # Every unit of work ends its own transaction (commit or rollback) before returning its
    # connection, so the pool's extra reset rollback would be a wasted round trip.
    kwargs.setdefault("pool_reset_on_return", None)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_S},
                                     pool_size=10, **kwargs)
        _configure_sqlite(engine)
        _translate_busy(engine)
    else:
        # asyncpg prepares every statement; after a few runs PostgreSQL may switch one to a
        # generic plan, which for our id lists means scanning the whole table each time.
        connect_args = {"server_settings": {"plan_cache_mode": "force_custom_plan"}} \
            if url.startswith("postgresql+asyncpg") else {}
        engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                     connect_args=connect_args, **kwargs)
    _track_vault_writes(engine)
    _translate_unique_violations(engine)
    return engine


SQLITE_BUSY_S = 30.0  # how long a SQLite writer waits for the file's write lock


def _is_busy(err: BaseException) -> bool:
    """SQLite's "database is locked" (its busy timeout ran out), not a broken database."""
    return isinstance(err, sqlite3.OperationalError) and "locked" in str(err)


def _translate_busy(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if _is_busy(ctx.original_exception):
            raise Busy(f"the database is busy: {ctx.original_exception}") \
                from ctx.sqlalchemy_exception


# One writer at a time per SQLite engine and event loop, queued in order on an asyncio lock
# (see writer_turn): SQLite takes one writer anyway, and its own busy handler makes the others
# poll with sleeps of up to 100 ms each, holding a pooled connection while they wait.
_WRITERS: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, asyncio.Lock]] = weakref.WeakKeyDictionary()


def writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """The SQLite engine's writer queue for the running loop; None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    per_loop = _WRITERS.setdefault(engine.sync_engine, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock


async def writer_turn(lock: asyncio.Lock, timeout_s: float | None = None) -> None:
    """Wait for the writer queue as long as SQLite's busy timeout would have; :class:`Busy`
    if it does not come (a writer that holds it that long is stuck)."""
    timeout_s = SQLITE_BUSY_S if timeout_s is None else timeout_s
    try:
        await asyncio.wait_for(lock.acquire(), timeout_s)
    except TimeoutError:
        raise Busy(f"no write turn within {timeout_s:g} s") from None


def _is_unique_violation(err: BaseException) -> bool:
    if getattr(err, "sqlstate", None) == "23505":  # PostgreSQL's unique_violation
        return True
    return isinstance(err, sqlite3.IntegrityError) and \
        str(err).startswith("UNIQUE constraint failed")


def _translate_unique_violations(engine: AsyncEngine) -> None:
    """A taken primary or unique key raises the port's ``Conflict`` (what the application
    can react to), not the driver's integrity error; other integrity errors stay as they
    are (they are bugs)."""
    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if _is_unique_violation(ctx.original_exception):
            first = str(ctx.original_exception).splitlines()[0]
            raise Conflict(f"unique key taken: {first}") from ctx.sqlalchemy_exception


def _track_vault_writes(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_execute(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        # cheap first test: nearly every statement on the hot path is a SELECT
        if statement[:1] not in ("S", "s", "B", "b") and _WRITES_VAULTS.match(statement):
            conn.info[VAULTS_WRITTEN] = True


def take_vaults_written(conn: AsyncConnection) -> bool:
    """Whether the connection wrote the vaults table since the last call (and reset)."""
    return bool(conn.sync_connection is not None
                and conn.sync_connection.info.pop(VAULTS_WRITTEN, False))


class SqliteChangeCounter:
    """``PRAGMA data_version`` of a SQLite file on a private connection: it changes whenever
    any other connection (of any process) commits. A few microseconds and no thread hop, so
    the vault cache can check it on every read."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def __call__(self) -> int:
        if self._conn is None:  # opened on first use: the file exists once migrated
            self._conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False,
                                         isolation_level=None)
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def sqlite_change_counter(engine: AsyncEngine) -> SqliteChangeCounter | None:
    """For a file-backed SQLite engine, its :class:`SqliteChangeCounter`; else None."""
    url = engine.url
    if (url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:")
            or "uri" in url.query):  # URI filenames: no counter, the cache's max age applies
        return None
    return SqliteChangeCounter(url.database)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "do_connect")
    def _do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # aiosqlite, but one thread hop per statement instead of three or four
        return dialect.dbapi.connect(*cargs, async_creator_fn=sqlite_driver.connect, **cparams)

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")  # per transaction from here: see SYNC_OPTION
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so read-then-write transactions
        # (sizing reads positions, then writes children) never interleave. Read-only units
        # of work begin deferred: in WAL mode they never wait for writers.
        options = conn.get_execution_options()
        readonly = options.get("vanta_readonly", False)
        if not readonly:
            _set_sync(conn, "FULL" if options.get(SYNC_OPTION, True) else "NORMAL")
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


# Durability of a SQLite commit, per transaction. In WAL mode ``synchronous=FULL`` syncs the
# log to disk at every commit; ``NORMAL`` leaves that to the next checkpoint or FULL commit
# (the log is written in order, so a FULL commit makes everything before it durable too).
# NORMAL never corrupts the database; a power cut (not a process crash) can lose the last
# NORMAL commits. Every transaction is FULL unless its unit of work says otherwise: an
# accepted order is on disk before the API answers. The dispatcher's bookkeeping is NORMAL:
# losing its last records is what its crash already means (the child goes again with the
# same webhook-id, which the receiver de-duplicates), and it saves two disk syncs per
# delivery batch on the order's path.
SYNC_OPTION = "vanta_durable"
_SYNC_LEVEL = "vanta_synchronous"  # the level a pooled connection is at (its info dict)


def _set_sync(conn: Any, level: str) -> None:
    """``PRAGMA synchronous`` before the transaction begins (it cannot change inside one),
    only when the pooled connection is at another level."""
    info = conn.connection.info
    if info.get(_SYNC_LEVEL, "FULL") != level:
        conn.exec_driver_sql(f"PRAGMA synchronous={level}")
        info[_SYNC_LEVEL] = level
