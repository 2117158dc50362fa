"""A settable clock for the :mod:`vanta.application.ports.clock` port.

The port is a plain callable returning an aware UTC ``datetime``; the real one is
:func:`vanta.application.ports.clock.utcnow`. ``FakeClock`` only moves when a test moves it,
and also offers ``monotonic`` (seconds, float) for the adapters that take a monotonic clock
(``MemoryStore``, ``CachedSecrets``), so one test can move every clock at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["T0", "FakeClock"]

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class FakeClock:
    """``clock()`` → the set time; ``advance(seconds)`` and ``set(when)`` move it.

    Time never runs backwards here, as a test almost never means it to: ``set`` to an earlier
    time raises unless ``allow_backwards=True`` (to model a stepped wall clock on purpose).
    """

    def __init__(self, start: datetime = T0) -> None:
        self._now = _aware(start)
        self._origin = self._now
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"

    @property
    def now(self) -> datetime:
        """The current time, without counting as a read."""
        return self._now

    def monotonic(self) -> float:
        """Seconds since the clock was made, for ``Callable[[], float]`` clocks."""
        return (self._now - self._origin).total_seconds()

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` (and/or ``timedelta`` keywords: ``minutes=5``)."""
        step = timedelta(seconds=seconds, **delta)
        if step < timedelta(0):
            raise ValueError("advance() moves forward only; use set(..., allow_backwards=True)")
        self._now += step
        return self._now

    def set(self, when: datetime, *, allow_backwards: bool = False) -> datetime:
        when = _aware(when)
        if when < self._now and not allow_backwards:
            raise ValueError(f"{when.isoformat()} is before {self._now.isoformat()}")
        self._now = when
        return self._now


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("the clock holds aware datetimes only (UTC)")
    return when.astimezone(UTC)
