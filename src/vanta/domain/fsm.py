"""A transition-table helper: every state machine in the domain is a dict of allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Generic, TypeVar

from vanta.domain.errors import InvalidTransition

S = TypeVar("S", bound=Enum)


class TransitionTable(Generic[S]):
    """Allowed moves between the states of one machine; anything not listed raises."""

    def __init__(self, name: str, table: Mapping[S, frozenset[S]]) -> None:
        self.name = name
        self._table = dict(table)

    def allowed(self, src: S) -> frozenset[S]:
        return self._table.get(src, frozenset())

    def can(self, src: S, dst: S) -> bool:
        return dst in self.allowed(src)

    def check(self, src: S, dst: S) -> S:
        if not self.can(src, dst):
            raise InvalidTransition(f"{self.name}: {src.value} -> {dst.value} is not allowed")
        return dst

    def is_terminal(self, state: S) -> bool:
        return not self.allowed(state)

    def states(self) -> list[S]:
        seen: dict[S, None] = {}
        for src, dsts in self._table.items():
            seen[src] = None
            for d in dsts:
                seen[d] = None
        return list(seen)
