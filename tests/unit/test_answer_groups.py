"""How a batch's answers are grouped for recording: together when they end together, the
healthy ones first when a slow send is still out."""

from __future__ import annotations

import asyncio

from vanta.application.dispatch_send import answer_groups
from vanta.application.ports.delivery import SendResult


async def _after(s: float) -> SendResult:
    await asyncio.sleep(s)
    return SendResult(200, int(s * 1000), "", None)


async def _groups(delays: list[float], quiet_s: float | None) -> list[list[int]]:
    tasks = [asyncio.ensure_future(_after(d)) for d in delays]
    index = {t: i for i, t in enumerate(tasks)}
    return [sorted(index[t] for t in g) async for g in answer_groups(tasks, quiet_s)]


async def test_answers_that_end_close_together_are_one_group() -> None:
    assert await _groups([0.0, 0.01, 0.02, 0.03], 0.1) == [[0, 1, 2, 3]]


async def test_a_slow_send_does_not_hold_back_the_others() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    seen: list[tuple[list[int], float]] = []
    tasks = [asyncio.ensure_future(_after(d)) for d in (0.0, 0.01, 0.6)]
    index = {t: i for i, t in enumerate(tasks)}
    async for g in answer_groups(tasks, 0.05):
        seen.append((sorted(index[t] for t in g), loop.time() - t0))
    assert [g for g, _ in seen] == [[0, 1], [2]]
    assert seen[0][1] < 0.3  # recorded once 50 ms passed with no answer, not after 0.6 s


async def test_a_steady_trickle_is_still_recorded_every_few_quiet_periods() -> None:
    groups = await _groups([0.03 * i for i in range(20)], 0.05)  # 0.6 s, never quiet
    assert len(groups) >= 2 and sorted(i for g in groups for i in g) == list(range(20))


async def test_without_a_quiet_period_the_batch_is_one_group() -> None:
    assert await _groups([0.0, 0.2], None) == [[0, 1]]
