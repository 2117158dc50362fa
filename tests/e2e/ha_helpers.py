"""Helpers of the high-availability tests (tests/e2e/test_ha_*.py): a NATS cluster of real
nats-server processes, followers seeded in one transaction, and the numbers every fault
reports (stall, late, lost, duplicated)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_relay_consumer import _free_port, _nats_server_binary


@dataclass
class NatsNode:
    name: str
    port: int
    cluster_port: int
    store: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


@dataclass
class NatsCluster:
    """n nats-server processes with JetStream, routed to each other on loopback."""

    root: Path
    size: int = 3
    nodes: list[NatsNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = _nats_server_binary()
        self.nodes = [NatsNode(f"n{i}", _free_port(), _free_port(), self.root / f"n{i}")
                      for i in range(self.size)]

    @property
    def url(self) -> str:
        """The VANTA_NATS_URL list form."""
        return ",".join(n.url for n in self.nodes)

    def _args(self, node: NatsNode) -> list[str]:
        routes = ",".join(f"nats://127.0.0.1:{n.cluster_port}" for n in self.nodes
                          if n is not node)
        return [self.binary, "-js", "-a", "127.0.0.1", "-p", str(node.port), "-sd",
                str(node.store), "--name", node.name, "--cluster_name", "vanta",
                "--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes]

    def start(self, timeout: float = 20) -> None:
        for node in self.nodes:
            self.start_node(node)
        asyncio.run(self._wait_for_meta_leader(timeout))

    def start_node(self, node: NatsNode) -> None:
        log = (self.root / f"{node.name}.log").open("ab")
        node.proc = subprocess.Popen(self._args(node), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", node.port), 0.2):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{node.name} did not listen")

    async def _wait_for_meta_leader(self, timeout: float) -> None:
        import nats
        deadline = time.monotonic() + timeout
        nc = await nats.connect(servers=[n.url for n in self.nodes])
        try:
            while True:
                try:
                    await nc.jetstream().account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    def stream_info(self, stream: str, wait_s: float = 30) -> Any:
        """The stream's info from a live node; retried for ``wait_s``, because after a node
        loss the cluster's API answers only once its meta leader is elected again (the
        stream itself may already be serving)."""
        async def go() -> Any:
            import nats
            deadline = time.monotonic() + wait_s
            nc = await nats.connect(servers=[n.url for n in self.nodes if n.proc
                                             and n.proc.poll() is None])
            try:
                while True:
                    try:
                        return await nc.jetstream(timeout=5).stream_info(stream)
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.5)
            finally:
                await nc.close()
        return asyncio.run(go())

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def kill(self, node: NatsNode) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(10)


async def seed_followers(settings: Any, tenant: str, vault: str, n: int,
                         hooks: str) -> dict[str, str]:
    """n webhook followers of ``vault`` in one transaction (registering 2,000 through the
    API would take longer than the fault it sets up); returns {follower key: whsec_ secret}."""
    from vanta.application.seed import register_webhook_followers
    from vanta.bootstrap import build

    c = build(settings)
    try:
        return await register_webhook_followers(
            c.uow, c.secrets, tenant_id=tenant, vault_id=vault,
            keys=[f"f{i:05d}" for i in range(n)], hooks=hooks, actor="test")
    finally:
        await c.close()


def register_secrets(rcv: httpx.Client, secrets: dict[str, str]) -> None:
    def one(item: tuple[str, str]) -> None:
        assert rcv.put(f"/_admin/secrets/{item[0]}", content=item[1]).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, secrets.items()))


def fault_figures(rcv: httpx.Client, children: list[dict[str, Any]], fault_at: float,
                  log: Path) -> dict[str, Any]:
    """Per fault: the longest gap between two arrivals after the fault (how long delivery
    stalled), children first applied more than 1 s after the fault (late), children never
    applied (lost) and 2xx answers for an id already applied (duplicated)."""
    import json
    state = rcv.get("/_admin/state").json()
    ids = state["ids"]
    times = sorted(json.loads(line)["t"] for line in log.read_text().splitlines() if line)
    after = [t for t in times if t >= fault_at]
    gaps = [b - a for a, b in zip([fault_at, *after], after, strict=False)]
    first_seen: dict[str, float] = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "rejected" not in rec:
            first_seen.setdefault(rec["wid"], rec["t"])
    fo_ids = {c["fo_id"] for c in children}
    return {"stall_s": round(max(gaps, default=0.0), 2),
            "late": sum(1 for i in fo_ids if first_seen.get(i, 0) > fault_at + 1.0),
            "lost": sum(1 for i in fo_ids if ids.get(i, {}).get("applied", 0) != 1),
            "duplicated": int(state["totals"]["duplicate_2xx"])}


class PgPair:
    """A PostgreSQL primary and a streaming replica (``initdb``, ``pg_basebackup -R``) on free
    loopback ports, run by the ``postgres`` OS user (initdb refuses root). Commits wait for
    the replica (``synchronous_standby_names='*'``), so a promotion loses no committed order.
    The primary archives its WAL to ``archive/`` (the point-in-time recovery drill)."""

    def __init__(self) -> None:
        from tests.e2e.test_production_profile import PrivatePostgres
        probe = PrivatePostgres()  # skips (or fails under CI) without the binaries
        self.bin, self.root = probe.bin, probe.root
        self.ports = {"primary": probe.port, "replica": _free_port()}
        self.archive = self.root / "archive"

    def data(self, role: str) -> Path:
        return self.root / role

    def url(self, role: str, db: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.ports[role]}/{db}"

    def failover_url(self, db: str = "postgres") -> str:
        """Both nodes; the driver takes the first that accepts writes."""
        hosts = "&".join(f"host=127.0.0.1:{p}" for p in self.ports.values())
        return f"postgresql+asyncpg://postgres@/{db}?{hosts}&target_session_attrs=read-write"

    def _as_postgres(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                              text=True, timeout=timeout, cwd=self.root, check=False)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    def _opts(self, role: str) -> str:
        # Only the first primary waits for a standby: the promoted replica has none, and
        # would otherwise block every commit.
        sync = "-c synchronous_standby_names='*' " if role == "primary" else ""
        return (f"-p {self.ports[role]} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c wal_level=replica -c max_wal_senders=5 "
                f"{sync}-c archive_mode=on "
                f"-c archive_command='cp %p {self.archive}/%f' -c archive_timeout=1")

    def pg_ctl(self, role: str, *args: str) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data(role)), "-l",
                          str(self.root / f"{role}.log"), *args)

    def start(self) -> None:
        self._as_postgres("mkdir", "-p", str(self.archive))
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data("primary")), "-A",
                          "trust", "-U", "postgres", "--no-sync")
        self.pg_ctl("primary", "-o", self._opts("primary"), "-w", "start")
        self._as_postgres(str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                          str(self.ports["primary"]), "-U", "postgres", "-D",
                          str(self.data("replica")), "-R", "-X", "stream", "--no-sync")
        self.pg_ctl("replica", "-o", self._opts("replica"), "-w", "start")

    def sql(self, role: str, query: str, db: str = "postgres") -> str:
        return self._as_postgres(str(self.bin / "psql"), "-h", "127.0.0.1", "-p",
                                 str(self.ports[role]), "-U", "postgres", "-d", db, "-At",
                                 "-c", query).strip()

    def stop(self) -> None:
        import shutil
        for role in self.ports:
            if (self.data(role) / "postmaster.pid").exists():
                subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"),
                                "-D", str(self.data(role)), "-m", "immediate", "-w", "stop"],
                               capture_output=True, timeout=60, cwd=self.root, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
