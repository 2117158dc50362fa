"""Redis Sentinel failover under the store the API uses (``VANTA_REDIS_SENTINELS``): Debian's
``redis-server`` (a master and a replica) and three ``redis-sentinel`` processes on free
loopback ports. The master is SIGKILLed during traffic; the store finds the promoted replica
through the sentinels on its own, an idempotency answer written before the failover (and
replicated, ``WAIT``) is still there, and the rate-limit bucket and a cache entry work again.
Slow: marked ``ha``."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_relay_consumer import _free_port

pytestmark = pytest.mark.ha
MASTER = "vanta-test"


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        msg = f"{tool} not found (apt-get install redis-server redis-sentinel)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return found


class RedisHa:
    def __init__(self, root: Path) -> None:
        self.server = _need("redis-server")
        # redis-sentinel is redis-server in sentinel mode: use that when the link is missing
        found = shutil.which("redis-sentinel")
        self.sentinel_cmd = [found] if found else [self.server, "--sentinel"]
        self.root = root
        self.master_port, self.replica_port = _free_port(), _free_port()
        self.sentinel_ports = [_free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.root)
        log.close()

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--protected-mode", "no"]
        self._start("master", [self.server, "--port", str(self.master_port), *common])
        self._start("replica", [self.server, "--port", str(self.replica_port), *common,
                                "--replicaof", "127.0.0.1", str(self.master_port)])
        for i, port in enumerate(self.sentinel_ports):
            conf = self.root / f"sentinel{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 500\n"
                f"sentinel failover-timeout {MASTER} 5000\n")
            self._start(f"sentinel{i}", [*self.sentinel_cmd[:1], str(conf),
                                         *self.sentinel_cmd[1:]])

    async def sentinels_ready(self) -> None:
        """Every sentinel knows the replica and the two other sentinels."""
        import redis.asyncio as aioredis
        for port in self.sentinel_ports:
            r = aioredis.Redis(host="127.0.0.1", port=port)
            try:
                replicas = await r.execute_command("SENTINEL", "REPLICAS", MASTER)
                peers = await r.execute_command("SENTINEL", "SENTINELS", MASTER)
            finally:
                await r.aclose()
            assert len(replicas) >= 1 and len(peers) >= 2, (port, replicas, peers)

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


@pytest.fixture
def redis_ha(tmp_path: Path) -> Iterator[RedisHa]:
    ha = RedisHa(tmp_path)
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()


async def _until(what: str, op: object, timeout: float = 30) -> float:
    """Retry ``op`` (an async callable) until it succeeds; the seconds it took."""
    t0 = time.monotonic()
    while True:
        try:
            await op()  # type: ignore[operator]
            return time.monotonic() - t0
        except Exception as e:
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{what}: still failing after {timeout} s: {e!r}") from e
            await asyncio.sleep(0.1)


async def test_master_killed_during_traffic(redis_ha: RedisHa) -> None:
    from vanta.bootstrap.stores import sentinel_store
    store = sentinel_store(redis_ha.sentinels, MASTER, timeout_s=0.5)
    await _until("first master", store.ping)
    try:
        await store.set("vanta:idem:k1", b'{"status":201}', ttl_s=600)

        async def replicated() -> None:  # the replica has it (it may still be syncing)
            assert await store.client.wait(1, 300) == 1
        await _until("replication", replicated)
        first = await store.take("vanta:rl:u1", rate_per_s=10, burst=5)
        assert first.allowed

        errors = 0
        stop = asyncio.Event()

        async def traffic() -> None:  # requests keep coming while the master dies
            nonlocal errors
            while not stop.is_set():
                try:
                    await store.take("vanta:rl:u2", rate_per_s=1000, burst=1000)
                except Exception:
                    errors += 1
                await asyncio.sleep(0.02)

        # Sentinels learn of the replica and of each other from periodic INFO and hello
        # messages; on a busy machine that can take seconds. Without it no failover happens.
        await _until("sentinels ready", redis_ha.sentinels_ready, timeout=60)
        runner = asyncio.create_task(traffic())
        await asyncio.sleep(0.3)
        redis_ha.procs["master"].send_signal(signal.SIGKILL)
        killed = time.monotonic()

        async def answered_by_new_master() -> None:
            assert await store.get("vanta:idem:k1") == b'{"status":201}'
            await store.set("vanta:cache:ent:t1", b"pro", ttl_s=60)

        stall = await _until("failover", answered_by_new_master, timeout=90)
        await asyncio.sleep(0.3)
        stop.set()
        await runner
        role = await store.client.execute_command("ROLE")
        assert role[0] in (b"master", "master")
        assert (await store.take("vanta:rl:u1", rate_per_s=10, burst=5)).allowed
        assert await store.get("vanta:cache:ent:t1") == b"pro"
        print(f"\n[redis_sentinel] {{\"stall_s\": {stall:.2f}, \"failed_calls\": {errors}, "
              f"\"since_kill_s\": {time.monotonic() - killed:.2f}}}")
    finally:
        await store.close()
