"""The API on Redis Sentinel (``VANTA_REDIS_SENTINELS``) while the Redis master is SIGKILLed
under traffic: Debian's ``redis-server`` (master + replica) and three ``redis-sentinel``
processes on free loopback ports, one API process, PostgreSQL.

Clients send orders with Idempotency-Keys and retry (same key) on 503 and 409, waiting the
``Retry-After`` they are given. Asserted: while no master is known a governed call answers
``503 idempotency_unavailable`` with ``Retry-After`` (never a 500, never an unprotected run);
every key keeps naming one order; every order exists once; after the failover the rate-limit
headers come back and the entitlement cache refills on the new master. Slow: marked ``ha``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_delivery_faults import Processes, _report
from tests.e2e.test_ha_nats_cluster import TENANT, VAULT, _platform
from tests.e2e.test_production_profile import _prod_env, _start_api
from tests.integration.test_ha_redis_sentinel import MASTER, RedisHa
from tests.pg import temp_database

pytestmark = [pytest.mark.e2e, pytest.mark.ha]


@pytest.fixture
def redis_ha(tmp_path: Path) -> Iterator[RedisHa]:
    root = tmp_path / "redis"
    root.mkdir()
    ha = RedisHa(root)
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()


def _wait_sentinels(ha: RedisHa, timeout: float = 60) -> None:
    """Until every sentinel knows the replica and its peers (else no failover happens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(ha.sentinels_ready())
            return
        except Exception:
            assert time.monotonic() < deadline, "sentinels never learned of each other"
            time.sleep(0.2)


def _master_port(ha: RedisHa) -> int:
    import redis
    r = redis.Redis(host="127.0.0.1", port=ha.sentinel_ports[0])
    try:
        _, port = r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(port)
    finally:
        r.close()


class Client:
    """Sends one order until it has an answer that is not 503/409, keeping the same key."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.unavailable: list[float] = []  # when a 503 was answered

    def post(self, body: dict[str, object], key: str) -> httpx.Response:
        for _ in range(600):
            r = self.api.post("/v1/manager-orders", json=body,
                              headers={"Idempotency-Key": key})
            with self.lock:
                self.statuses[r.status_code] += 1
            if r.status_code == 503:
                assert r.headers["content-type"] == "application/problem+json", r.text
                assert r.json()["code"] == "idempotency_unavailable", r.text
                with self.lock:
                    self.unavailable.append(time.monotonic())
            if r.status_code in (503, 409):
                time.sleep(min(float(r.headers["retry-after"]), 1.0) / 4)
                continue
            assert r.status_code < 500, r.text  # never a bare 500 while Redis fails over
            return r
        raise AssertionError(f"order with key {key} never answered")


def test_redis_master_killed_under_api_traffic(procs: Processes, tmp_path: Path,
                                               postgres_url: str, redis_ha: RedisHa) -> None:
    started = time.monotonic()
    with temp_database(postgres_url) as db_url:
        env = _prod_env(tmp_path, db_url, "nats://127.0.0.1:1",
                        VANTA_REDIS_SENTINELS=redis_ha.sentinels,
                        VANTA_REDIS_SENTINEL_MASTER=MASTER,
                        VANTA_RATE_LIMIT_PER_MINUTE="600000", VANTA_RATE_LIMIT_BURST="5000")
        # in this process: four CLI runs would cost more than the failover they set up
        token = asyncio.run(_platform(Path(env["VANTA_DATA_DIR"]), db_url))
        api = _start_api(procs, tmp_path, "api", env, token)
        api.event_hooks = {"request": [], "response": []}  # this test sets its own keys
        _wait_sentinels(redis_ha)
        old_master = _master_port(redis_ha)
        assert "ratelimit-remaining" in api.get("/v1/subscriptions/me").headers
        client = Client(api)
        n = 80
        answers: dict[str, str] = {}

        def one(i: int) -> None:
            key = uuid.uuid4().hex
            # the order's own id: if the answer could not be kept across the failover, a
            # retry finds the order instead of writing a second one
            body = {"id": f"rs-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                    "qty": 1 + i, "ref_price": 100}
            r = client.post(body, key)
            assert r.status_code in (200, 201), r.text
            assert r.json()["id"] == f"rs-{i}"
            answers[key] = r.json()["mo_id"]
            again = client.post(body, key)  # the same key again: the same order
            assert again.json()["mo_id"] == answers[key], again.text

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(one, i) for i in range(n)]
            while len(answers) < n // 4:
                time.sleep(0.01)
            redis_ha.procs["master"].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            for f in futures:
                f.result()
        done = time.monotonic()

        deadline = time.monotonic() + 60
        while _master_port(redis_ha) == old_master:  # the sentinels promoted the replica
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.1)
        new_master = _master_port(redis_ha)

        import redis
        r = redis.Redis(host="127.0.0.1", port=new_master)
        try:
            # rate limits recover: the buckets live on the new master again (the limiter
            # lets calls through without headers while the store is unreachable)
            for k in r.scan_iter("vanta:rl:*"):
                r.delete(k)
            after = api.get("/v1/subscriptions/me")
            assert after.status_code == 200, after.text
            assert int(after.headers["ratelimit-remaining"]) < 5000
            assert any(r.scan_iter("vanta:rl:user:*")) and any(r.scan_iter("vanta:rl:ip:*"))
            key = f"vanta:entitlements:{TENANT}"
            r.delete(key)  # whatever was replicated: it must be written again by a read
            assert api.get("/v1/subscriptions/me").json()["plan"]
            assert r.get(key) is not None  # the entitlement cache refilled on the new master
        finally:
            r.close()

        listed = api.get("/v1/manager-orders", params={"limit": 200}).json()["data"]
        assert sorted(o["mo_id"] for o in listed) == sorted(answers.values())  # once each
        assert len(set(answers.values())) == n
        assert client.statuses[503] > 0  # the outage (>= down-after 0.5 s) was seen as 503
        stall = (max(client.unavailable) - min(client.unavailable)
                 if client.unavailable else 0.0)
        procs.stop_all()
        _report("redis_master_killed_api", {
            "orders": n, "statuses": dict(client.statuses),
            "answers_503": client.statuses[503], "stall_s": round(stall, 2),
            "traffic_after_kill_s": round(done - killed, 2),
            "total_s": round(time.monotonic() - started, 1)})
