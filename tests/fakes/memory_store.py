"""The in-memory database behind :class:`tests.fakes.uow.MemoryUnitOfWork`: one dict "table"
per SQL table (key tuple -> row), and the transaction that stages writes to them.

Isolation is that of the SQLite profile: a unit of work reads what is committed until it
first writes; its first write waits for the single writer slot (SQLite's ``BEGIN
IMMEDIATE``), copies the tables and works on the copy from then on; ``commit`` publishes the
copy, anything else throws it away. Rows are replaced, never changed in place, so copying a
table is copying its dict. Values are stored as the SQL adapter returns them: decimals
normalized, timestamps aware UTC, JSON columns as text (so a value JSON cannot hold fails
here as it does there, and every read decodes fresh objects the caller may change freely).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.fakes.memory_schema import SCHEMA, TableSpec
from vanta.application.ports.uow import Conflict
from vanta.domain.money import normalize

Row = dict[str, Any]
Key = tuple[Any, ...]
Table = dict[Key, Row]

WRITER_WAIT_S = 10.0  # a second writer in the same task would wait forever: fail instead


class IntegrityViolation(Exception):
    """A write the database would refuse for a reason other than a taken unique key (a
    missing NOT NULL column, an unknown column, a dangling foreign key): a bug in the
    caller, as an ``IntegrityError`` would be on SQL."""


class TransactionAborted(Exception):
    """A statement after a failed one in the same transaction (PostgreSQL refuses those; the
    fake does too, so code that relies on SQLite's leniency fails here first)."""


def utc(v: datetime) -> datetime:
    """Aware UTC, as the SQL adapter reads timestamps back (a naive one is taken as UTC)."""
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def store_value(spec: TableSpec, col: str, v: Any) -> Any:
    """A value in the form the SQL adapter would read it back."""
    if v is None:
        return None
    if col in spec.json:
        return json.dumps(v)  # raises on what the SQL JSON column cannot hold either
    if col in spec.decimals:
        return normalize(v if isinstance(v, Decimal) else Decimal(str(v)))
    if isinstance(v, datetime):
        return utc(v)
    return v


def load_row(spec: TableSpec, row: Row, leave_out: Iterable[str] = ()) -> Row:
    """A fresh dict of a stored row (JSON decoded anew)."""
    skip = set(leave_out)
    return {c: (json.loads(v) if c in spec.json and v is not None else v)
            for c, v in row.items() if c not in skip}


class MemoryStore:
    """The committed state, shared by every unit of work of one fake database."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {name: {} for name in SCHEMA}
        # Like PostgreSQL sequences, never rolled back: ids are unique, not gapless.
        self.serials: dict[str, int] = {name: 0 for name in SCHEMA}
        self._writer: asyncio.Lock | None = None

    @property
    def writer(self) -> asyncio.Lock:
        if self._writer is None:  # made on first use, inside the running loop
            self._writer = asyncio.Lock()
        return self._writer

    def rows(self, table: str) -> list[Row]:
        """Committed rows, decoded (for assertions in tests)."""
        spec = SCHEMA[table]
        return [load_row(spec, r) for r in self.tables[table].values()]


class Transaction:
    """One unit of work's view of the store."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._work: dict[str, Table] | None = None
        self._holds_writer = False
        self.failed = False
        self.written: set[str] = set()

    # -- reading ----------------------------------------------------------------------------

    def _check(self) -> None:
        if self.failed:
            raise TransactionAborted("an earlier statement of this transaction failed")

    def table(self, name: str) -> Table:
        self._check()
        return (self._work if self._work is not None else self.store.tables)[name]

    def scan(self, name: str, where: Callable[[Row], bool] | None = None) -> Iterator[Row]:
        """Stored rows (not copies: callers hand out :func:`load_row` results only)."""
        for r in list(self.table(name).values()):
            if where is None or where(r):
                yield r

    def get(self, name: str, *key: Any) -> Row | None:
        return self.table(name).get(tuple(key))

    # -- writing ----------------------------------------------------------------------------

    async def writable(self, name: str) -> Table:
        self._check()
        if self._work is None:
            try:
                await asyncio.wait_for(self.store.writer.acquire(), WRITER_WAIT_S)
            except TimeoutError:
                raise RuntimeError("another unit of work holds the writer slot: is a second "
                                   "writing unit of work open in the same task?") from None
            self._holds_writer = True
            self._work = {n: dict(t) for n, t in self.store.tables.items()}
        self.written.add(name)
        return self._work[name]

    async def insert(self, name: str, rows: Iterable[Mapping[str, Any]],
                     conflict: type[Conflict] = Conflict) -> list[Row]:
        """Insert rows all-or-nothing; a taken primary or unique key raises ``conflict``."""
        spec = SCHEMA[name]
        table = await self.writable(name)
        staged: Table = {}
        taken = {u: {tuple(r[c] for c in u) for r in table.values()} for u in spec.unique}
        try:
            for raw in rows:
                row = self._complete(spec, raw)
                key = tuple(row[c] for c in spec.key)
                if key in table or key in staged:
                    raise conflict(f"{name}: key {key!r} exists")
                for u, seen in taken.items():
                    value = tuple(row[c] for c in u)
                    if None not in value:  # NULLs never collide, as in SQL
                        if value in seen:
                            raise conflict(f"{name}: {u!r} {value!r} exists")
                        seen.add(value)
                self._check_foreign(spec, row)
                staged[key] = row
        except (Conflict, IntegrityViolation):
            self.failed = True
            raise
        table.update(staged)
        return list(staged.values())

    def _complete(self, spec: TableSpec, raw: Mapping[str, Any]) -> Row:
        unknown = set(raw) - set(spec.columns)
        if unknown:
            raise IntegrityViolation(f"{spec.name}: unknown columns {sorted(unknown)}")
        row: Row = {}
        for c in spec.columns:
            v = raw[c] if c in raw else spec.defaults.get(c)
            row[c] = store_value(spec, c, v)
        if spec.serial is not None and row[spec.serial] is None:
            self.store.serials[spec.name] += 1
            row[spec.serial] = self.store.serials[spec.name]
        elif spec.serial is not None:
            self.store.serials[spec.name] = max(self.store.serials[spec.name],
                                                int(row[spec.serial]))
        missing = sorted(c for c in spec.required if row[c] is None)
        if missing:
            raise IntegrityViolation(f"{spec.name}: NOT NULL columns missing: {missing}")
        return row

    def _check_foreign(self, spec: TableSpec, row: Row) -> None:
        assert self._work is not None
        for col, target in spec.foreign.items():
            if row[col] is not None and (row[col],) not in self._work[target]:
                raise IntegrityViolation(f"{spec.name}.{col}: no {target} row {row[col]!r}")

    async def update(self, name: str, where: Callable[[Row], bool],
                     values: Mapping[str, Any] | Callable[[Row], Mapping[str, Any]]
                     ) -> list[Row]:
        """Replace every matching row with its updated copy; the updated rows."""
        spec = SCHEMA[name]
        table = await self.writable(name)
        unknown = (set(values) - set(spec.columns)) if isinstance(values, Mapping) else set()
        if unknown:
            self.failed = True
            raise IntegrityViolation(f"{name}: unknown columns {sorted(unknown)}")
        out = []
        for key, r in list(table.items()):
            if where(r):
                new = values(r) if callable(values) else values
                table[key] = {**r, **{c: store_value(spec, c, v) for c, v in new.items()}}
                out.append(table[key])
        return out

    async def delete(self, name: str, where: Callable[[Row], bool]) -> int:
        table = await self.writable(name)
        doomed = [k for k, r in table.items() if where(r)]
        for k in doomed:
            del table[k]
        return len(doomed)

    # -- ending -----------------------------------------------------------------------------

    def commit(self) -> set[str]:
        """Publish the staged tables; the names of the tables written."""
        self._check()
        written = self.written
        if self._work is not None:
            self.store.tables = self._work
        self._end()
        return written

    def rollback(self) -> None:
        self._end()

    def _end(self) -> None:
        self._work = None
        self.written = set()
        self.failed = False
        if self._holds_writer:
            self._holds_writer = False
            self.store.writer.release()


def after(ts: datetime, key: str, row_ts: Any, row_key: Any) -> bool:
    """Keyset paging: (row_ts, row_key) strictly after (ts, key)."""
    ts = utc(ts)
    return bool(row_ts > ts or (row_ts == ts and row_key > key))


def among(values: Iterable[Any]) -> frozenset[Any]:
    return frozenset(values)
