"""The fan-out benchmark's follower endpoint: one aiohttp process, many follower paths.

    .venv/bin/python bench/fanout_receiver.py --port 0 --port-file P [--secrets secrets.json]

Every follower posts to ``/hooks/{key}``; ``{key}``'s ``whsec_`` secret comes from a JSON file
``{key: whsec}`` written by the benchmark (``--secrets``, or ``POST /_admin/load`` with
``{"path": ...}`` to add more later). Every request is checked with
``vanta.receiving.verify(..., require="both")`` (both signature schemes), its arrival time
(``time.time()``, taken once the whole body has been read) is recorded under its
``webhook-id`` and under a *group* (the body's ``meta.mo_id``: one manager order, or one
baseline round), and it is answered 200, verified or not, so that nothing is retried; a
failed check is counted instead and the benchmark refuses the run.

Fault injection (``bench/faults.py``): ``POST /_admin/faults`` with ``{"seed": 1, "5xx": 0.2,
"timeout": 0.05, "reset": 0.05, "slow": 0.05, "slow_s": 1.0, "hang_s": 30}`` makes each
verified request, drawn at random, answer 503, hang for ``hang_s`` (the sender times out),
drop the connection, or answer 200 after ``slow_s``; ``{}`` turns faults off. Every attempt
is recorded (``GET /_attempts/{group}``: ``{webhook_id: [[arrival, kind], ...]}``); a
webhook-id counts as a duplicate only when it is answered 2xx twice.

Stats over HTTP:
* ``GET /_stats``: totals (received, verified, failures by reason, duplicates, unknown keys).
* ``GET /_group/{group}``: ``{"count": distinct verified webhook-ids, "last": arrival}``.
* ``GET /_arrivals/{group}``: ``{"arrivals": {webhook_id: first arrival time}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from vanta.receiving import WebhookVerificationError, verify


class FanoutReceiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.received = 0
        self.verified = 0
        self.duplicates = 0
        self.failures: Counter[str] = Counter()
        self.groups: dict[str, dict[str, float]] = {}  # group -> webhook-id -> first arrival
        self.last: dict[str, float] = {}
        self.faults: dict[str, float] = {}
        self.rng = random.Random(0)
        self.attempts: dict[str, dict[str, list[tuple[float, str]]]] = {}
        self.acked: set[str] = set()

    def load(self, path: str) -> int:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        self.secrets.update({str(k): str(v) for k, v in data.items()})
        return len(data)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/hooks/{key}", self.hook)
        app.router.add_post("/_admin/load", self.admin_load)
        app.router.add_get("/_stats", self.stats)
        app.router.add_get("/_group/{group}", self.group)
        app.router.add_get("/_arrivals/{group}", self.arrivals)
        app.router.add_post("/_admin/faults", self.admin_faults)
        app.router.add_get("/_attempts/{group}", self.group_attempts)
        return app

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        now = time.time()
        self.received += 1
        secret = self.secrets.get(request.match_info["key"])
        if secret is None:
            self.failures["unknown_key"] += 1
            return web.Response(status=200, text="unknown key")
        try:
            verify(request.headers, raw, secret, require="both")
        except WebhookVerificationError as e:
            self.failures[e.reason] += 1
            return web.Response(status=200, text=e.reason)
        self.verified += 1
        wid = request.headers["webhook-id"]
        try:
            group = str(json.loads(raw)["meta"]["mo_id"])
        except (ValueError, KeyError, TypeError):
            group = "?"
        if self.faults:
            return await self._faulty(request, group, wid, now)
        seen = self.groups.setdefault(group, {})
        if wid in seen:
            self.duplicates += 1
        else:
            seen[wid] = now
            self.last[group] = max(now, self.last.get(group, 0.0))
        return web.Response(status=200, text="ok")

    async def _faulty(self, request: web.Request, group: str, wid: str,
                      now: float) -> web.StreamResponse:
        f, x = self.faults, self.rng.random()
        kind = "ok"
        for name in ("5xx", "timeout", "reset", "slow"):
            if x < f.get(name, 0.0):
                kind = name
                break
            x -= f.get(name, 0.0)
        self.attempts.setdefault(group, {}).setdefault(wid, []).append((now, kind))
        if kind == "5xx":
            return web.Response(status=503, text="injected")
        if kind == "timeout":
            await asyncio.sleep(f.get("hang_s", 30.0))
            return web.Response(status=503, text="too late")
        if kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=503)  # never reaches the client
        if kind == "slow":
            await asyncio.sleep(f.get("slow_s", 1.0))
        if wid in self.acked:
            self.duplicates += 1
        self.acked.add(wid)
        seen = self.groups.setdefault(group, {})
        seen.setdefault(wid, now)
        return web.Response(status=200, text="ok")

    async def admin_faults(self, request: web.Request) -> web.Response:
        self.faults = {k: float(v) for k, v in (await request.json()).items() if k != "seed"}
        self.rng = random.Random((await request.json()).get("seed", 0))
        return web.json_response({"faults": self.faults})

    async def group_attempts(self, request: web.Request) -> web.Response:
        return web.json_response({"attempts": self.attempts.get(request.match_info["group"],
                                                                {})})

    async def admin_load(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"loaded": self.load(body["path"])})

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response({
            "received": self.received, "verified": self.verified,
            "failed": sum(self.failures.values()), "failures": dict(self.failures),
            "duplicates": self.duplicates, "keys": len(self.secrets),
            "groups": len(self.groups)})

    async def group(self, request: web.Request) -> web.Response:
        g = request.match_info["group"]
        return web.json_response({"count": len(self.groups.get(g, {})),
                                  "last": self.last.get(g)})

    async def arrivals(self, request: web.Request) -> web.Response:
        g = request.match_info["group"]
        return web.json_response({"arrivals": self.groups.get(g, {})})


async def _main(args: argparse.Namespace) -> None:
    rcv = FanoutReceiver()
    if args.secrets:
        rcv.load(args.secrets)
    runner = web.AppRunner(rcv.app(), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    await web.SockSite(runner, sock, backlog=4096).start()
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(sock.getsockname()[1]))
        tmp.replace(args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--secrets", help="JSON file {key: whsec_...}")
    args = p.parse_args()
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(_main(args))
    else:
        uvloop.run(_main(args))


if __name__ == "__main__":
    main()
