"""Database errors translated into the application's terms (``vanta.application.ports.uow``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError

from vanta.application.ports.uow import Conflict


class IntegrityConflict(Conflict, IntegrityError):
    """A unique key collision, as the port's :class:`Conflict`. Still an ``IntegrityError``,
    so code that catches the driver's error keeps working while it moves to the port's."""


@asynccontextmanager
async def unique_conflicts() -> AsyncIterator[None]:
    """Re-raise an integrity error of the statements inside as :class:`IntegrityConflict`."""
    try:
        yield
    except IntegrityError as e:
        if isinstance(e, Conflict):
            raise
        raise IntegrityConflict(e.statement, e.params, e.orig if e.orig is not None else e,
                                hide_parameters=e.hide_parameters) from e
