"""Shared helpers of the SQL repositories: row conversion, id lists, keyset paging."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, any_, bindparam, column, func, insert, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

Row = dict[str, Any]
OUTBOX_CHANNEL = "vanta_outbox"  # PostgreSQL NOTIFY channel: outbox rows became due


def _after(ts_col: Any, id_col: Any, after: tuple[datetime, str]) -> Any:
    """Keyset pagination: rows strictly after (timestamp, id) in (timestamp, id) order."""
    ts, key = after
    return or_(ts_col > ts, and_(ts_col == ts, id_col > key))


def _row(r: Any) -> Row:
    """A result row as a dict, timestamps made aware (SQLite returns them naive)."""
    d = dict(r._mapping)
    for k, v in d.items():
        if isinstance(v, datetime) and v.tzinfo is None:
            d[k] = v.replace(tzinfo=UTC)
    return d


def _plain_row(r: Any) -> Row:
    """A result row as a dict, for a driver that returns aware timestamps (asyncpg)."""
    return dict(r._mapping)


class _Repo:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._to_row = _plain_row if self._postgres else _row

    def _among(self, col: Any, values: Iterable[Any]) -> ColumnElement[bool]:
        """``col`` is one of ``values``. On PostgreSQL ``col = ANY($n)`` with the list as one
        array parameter: the statement's text does not depend on the list's length, so it is
        compiled and prepared once (an expanded ``IN ($1, …, $64)`` is rendered for every
        execution and prepared per length: about twice the client CPU for a batch's id list),
        and the index on ``col`` serves it as it serves ``IN``. Elsewhere a plain ``IN``."""
        if self._postgres:
            return col == any_(bindparam(f"{col.name}_list", list(values),
                                         type_=ARRAY(col.type), unique=True))
        return col.in_(list(values))  # type: ignore[no-any-return]

    def _unnest(self, name: str, table: Any, rows: Sequence[Mapping[str, Any]],
                names: Sequence[str]) -> TableValuedAlias:
        """PostgreSQL only: ``rows`` as a derived table ``name`` with the columns ``names``
        (typed like ``table``'s), from one array parameter per column: a batch is one
        statement with a fixed text, however many rows it has, where an executemany
        runs one statement per row."""
        arrays = [bindparam(f"{name}_{c}", [r[c] for r in rows], unique=True,
                            type_=ARRAY(table.c[c].type)) for c in names]
        return func.unnest(*arrays).table_valued(
            *(column(c, table.c[c].type) for c in names)).render_derived(name=name)

    async def _insert_many(self, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (each with the same keys) in one statement: on PostgreSQL an
        ``INSERT ... SELECT FROM unnest(...)`` with one array per column, elsewhere an
        executemany."""
        if not rows:
            return
        if not self._postgres:
            await self.conn.execute(insert(table), [dict(r) for r in rows])
            return
        names = list(rows[0])
        v = self._unnest("v", table, rows, names)
        await self.conn.execute(insert(table).from_select(names, select(*v.c)))

    async def _one(self, stmt: Any) -> Row | None:
        r = (await self.conn.execute(stmt)).first()
        return self._to_row(r) if r is not None else None

    async def _all(self, stmt: Any) -> list[Row]:
        to_row = self._to_row
        return [to_row(r) for r in (await self.conn.execute(stmt)).all()]

    async def _by_key(self, key: Any, values: Iterable[str],
                      leave_out: tuple[str, ...] = ()) -> dict[str, Row]:
        """Rows of ``key``'s table whose ``key`` is one of ``values``, by that key."""
        wanted = list(set(values))
        if not wanted:
            return {}
        cols = [c for c in key.table.c if c.name not in leave_out]
        rows = await self._all(select(*cols).where(self._among(key, wanted)))
        return {r[key.name]: r for r in rows}
