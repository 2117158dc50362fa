"""What every in-memory repository shares: reading rows out of its table, in SQL's order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from tests.fakes.memory_schema import SCHEMA, TableSpec
from tests.fakes.memory_store import Row, Transaction, load_row
from vanta.application.ports.uow import Conflict


def nulls_first(v: Any) -> tuple[bool, Any]:
    """A sort key putting NULL before any value (SQLite's order for ascending keys)."""
    return (v is not None, v)


class MemRepo:
    table: ClassVar[str]
    conflict: ClassVar[type[Conflict]] = Conflict

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    @property
    def spec(self) -> TableSpec:
        return SCHEMA[self.table]

    def _select(self, where: Callable[[Row], bool] | None = None, *,
                order: Callable[[Row], Any] | None = None, desc: bool = False,
                limit: int | None = None, leave_out: Iterable[str] = ()) -> list[Row]:
        rows = list(self.tx.scan(self.table, where))
        if order is not None:
            rows.sort(key=order, reverse=desc)
        if limit is not None:
            rows = rows[:max(limit, 0)]
        return [load_row(self.spec, r, leave_out) for r in rows]

    def _first(self, where: Callable[[Row], bool], *, order: Callable[[Row], Any] | None = None,
               desc: bool = False) -> Row | None:
        rows = self._select(where, order=order, desc=desc, limit=1)
        return rows[0] if rows else None

    async def _add(self, row: Mapping[str, Any]) -> Row:
        return (await self.tx.insert(self.table, [row], self.conflict))[0]

    def _by_key(self, col: str, values: Iterable[str],
                leave_out: Iterable[str] = ()) -> dict[str, Row]:
        wanted = set(values)
        if not wanted:
            return {}
        return {r[col]: r for r in self._select(lambda r: r[col] in wanted,
                                                leave_out=leave_out)}
