"""The TargetVetter port: the SSRF adapter and the fake answer alike. Only literal addresses
and a reserved ``.invalid`` name are used, so nothing public is looked up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes.vetter import FakeTargetVetter
from vanta.adapters.webhooks.ssrf import TargetPolicy
from vanta.adapters.webhooks.vetter import PolicyTargetVetter
from vanta.application.ports.delivery import TargetNotDeliverable, TargetVetter


def _real() -> TargetVetter:
    return PolicyTargetVetter(TargetPolicy(allowlist=["127.0.0.1/32"]))


def _fake() -> TargetVetter:
    return FakeTargetVetter({"10.0.0.1": "private_address",
                             "169.254.169.254": "metadata_address",
                             "nowhere.vanta-test.invalid": "unresolvable"})


@pytest.fixture(params=[_real, _fake], ids=["ssrf", "fake"])
def vetter(request: pytest.FixtureRequest) -> TargetVetter:
    made: TargetVetter = request.param()
    return made


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "http://127.0.0.1:9/h"])
async def test_a_deliverable_url_passes(vetter: TargetVetter, url: str) -> None:
    await vetter.vet(url)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://10.0.0.1/h", "private_address"),
    ("http://169.254.169.254/latest", "metadata_address"),
    ("https://nowhere.vanta-test.invalid/h", "unresolvable"),
])
async def test_an_undeliverable_url_is_refused_with_its_reason(
        vetter: TargetVetter, url: str, reason: str) -> None:
    with pytest.raises(TargetNotDeliverable) as e:
        await vetter.vet(url)
    assert e.value.reason == reason


async def test_a_slow_lookup_counts_as_unresolvable_without_blocking_the_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(*_: Any, **__: Any) -> list[Any]:
        await asyncio.sleep(30)
        return []

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", hang)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with pytest.raises(TargetNotDeliverable) as e:
        await PolicyTargetVetter(TargetPolicy(), timeout_seconds=0.2).vet("http://slow.test/h")
    ticker.cancel()
    assert e.value.reason == "unresolvable" and ticks >= 5
