"""The clock contract (:mod:`vanta.application.ports.clock`), run on the settable fake
(``tests/fakes/clock.py``) and the real ``utcnow``: an aware UTC datetime that never runs
backwards between two reads, formatted by ``iso`` as RFC 3339 with a ``Z``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.fakes.cache import memory_store
from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretStore
from vanta.adapters.secrets.cached import CachedSecrets
from vanta.application.ports.clock import Clock, iso, utcnow

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture(params=["fake", "utcnow"])
def clock(request: pytest.FixtureRequest) -> Clock:
    return FakeClock() if request.param == "fake" else utcnow


def test_now_is_an_aware_utc_datetime(clock: Clock) -> None:
    now = clock()
    assert isinstance(now, datetime)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_reads_never_run_backwards(clock: Clock) -> None:
    reads = [clock() for _ in range(1000)]
    assert reads == sorted(reads)


def test_iso_is_rfc3339_with_a_z(clock: Clock) -> None:
    now = clock()
    text = iso(now)
    assert RFC3339_Z.fullmatch(text), text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == now


def test_iso_converts_other_offsets_to_utc() -> None:
    paris = datetime(2026, 1, 5, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert iso(paris) == "2026-01-05T09:30:00.000000Z"


def test_the_fake_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    assert clock() == clock() == datetime(2026, 1, 5, tzinfo=UTC)
    assert clock.advance(90) == datetime(2026, 1, 5, 0, 1, 30, tzinfo=UTC)
    assert clock.advance(minutes=1) == datetime(2026, 1, 5, 0, 2, 30, tzinfo=UTC)
    assert clock.monotonic() == 150.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 4, tzinfo=UTC))
    assert clock.set(datetime(2026, 1, 4, tzinfo=UTC), allow_backwards=True).day == 4
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 5))  # naive


async def test_the_fake_drives_the_memory_store_and_secret_cache() -> None:
    clock = FakeClock()
    store = memory_store(clock)
    await store.set("k", b"v", 10)
    secrets = FakeSecretStore()
    ref = secrets.put("s", b"one")
    cache = CachedSecrets(secrets, ttl_seconds=10, clock=clock.monotonic)
    assert cache.get(ref) == b"one"
    secrets.put("s", b"two")
    clock.advance(9.9)
    assert await store.get("k") == b"v" and cache.get(ref) == b"one"
    clock.advance(0.2)
    assert await store.get("k") is None and cache.get(ref) == b"two"
