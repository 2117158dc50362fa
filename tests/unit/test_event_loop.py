"""Long-running commands run on uvloop when it is installed, unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest

from vanta.entrypoints.cli import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_picks_uvloop_and_asyncio_keeps_the_standard_loop() -> None:
    pytest.importorskip("uvloop")
    assert event_loop.run(_loop_module()).startswith("uvloop")
    assert event_loop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_asking_for_uvloop_without_it_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import now raises ImportError
    assert event_loop.loop_factory("auto") is None
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        event_loop.loop_factory("uvloop")


def test_tuning_the_collector_freezes_what_exists_and_raises_the_young_threshold() -> None:
    import gc
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        event_loop.tune_gc(0)  # 0 keeps Python's defaults
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        event_loop.tune_gc(12_345)
        assert gc.get_threshold() == (12_345, *before[1:])
        assert gc.get_freeze_count() > 1000  # at least this test run's modules and classes
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
