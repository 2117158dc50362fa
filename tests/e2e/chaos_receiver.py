"""A misbehaving, idempotent webhook receiver for the delivery fault tests.

Run standalone::

    python tests/e2e/chaos_receiver.py --port 0 --port-file F --seed N --fail-rate R --log L

Every request to ``POST /hooks/{key}`` is verified first (both signature schemes, with
``vanta.receiving.verify`` and the secret registered through ``PUT /_admin/secrets/{key}``).
Then the receiver picks what to do. The choice is seeded by ``(seed, webhook-id, how many
times this id has arrived)``, so the same id gets the same treatment in the same order
whatever the arrival order across ids. With probability ``--fail-rate`` it misbehaves in one
of these ways:

* ``http_500`` / ``http_502`` / ``http_503``: answers that status, applies nothing;
* ``http_429``: answers 429 with ``Retry-After: 0``, applies nothing;
* ``timeout``: sleeps ``--hang-seconds`` (longer than the sender's timeout), applies nothing;
* ``reset``: aborts the TCP connection (RST, no response at all), applies nothing;
* ``lost_answer``: applies the effect, then sleeps past the sender's timeout, so the sender
  never learns that it worked (the "effect happened, answer lost" case).

Otherwise it answers 200 (``slow``: after ``--slow-ms`` milliseconds, within the timeout;
``ok``: at once). Before answering 200 it applies the effect if this webhook-id was never
applied: the receiver is idempotent, as the README asks integrators to be.

``--always-fail-keys a,b`` makes those endpoints answer 503 to everything (dead letters).

``GET /_admin/state`` returns, per webhook-id: the endpoint key, arrivals, how many times the
effect was applied (0 or 1 by construction; the interesting number is ``duplicate_2xx``, the
2xx answers for an id that was already applied), the attempt numbers the sender put in the
body, each arrival's fault mode, and whether a redelivery carried a different order than the
one applied; and ``peer_ports``, requests per client port, so a test can tell which sender
process a request came from. ``GET /_admin/state?summary=1`` returns only the totals (cheap
to poll).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from vanta.receiving import WebhookVerificationError, verify

FAULTS = ("http_500", "http_502", "http_503", "http_429", "timeout", "reset", "lost_answer")
# Fields of the body that may legitimately differ between deliveries of one webhook-id.
VOLATILE = ("ts", "audit")


@dataclass
class IdState:
    key: str
    arrivals: int = 0
    applied: int = 0
    ok_2xx: int = 0
    duplicate_2xx: int = 0
    attempt_nos: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    content_mismatch: int = 0
    body: dict[str, Any] | None = None  # the order as first applied (volatile fields dropped)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "arrivals": self.arrivals, "applied": self.applied,
                "ok_2xx": self.ok_2xx, "duplicate_2xx": self.duplicate_2xx,
                "attempt_nos": self.attempt_nos, "modes": self.modes,
                "content_mismatch": self.content_mismatch, "body": self.body}


class ChaosReceiver:
    def __init__(self, *, seed: int, fail_rate: float, slow_ms: tuple[int, int],
                 slow_rate: float, hang_seconds: float, always_fail: set[str],
                 log_path: Path | None) -> None:
        self.seed = seed
        self.fail_rate = fail_rate
        self.slow_ms = slow_ms
        self.slow_rate = slow_rate
        self.hang_seconds = hang_seconds
        self.always_fail = always_fail
        self.secrets: dict[str, str] = {}
        self.ids: dict[str, IdState] = {}
        self.rejected: Counter[str] = Counter()  # unknown key, bad signature, bad body
        self.mode_totals: Counter[str] = Counter()
        self.requests = 0
        self.peer_ports: Counter[int] = Counter()  # requests per client port (connection)
        self._log = log_path.open("a", encoding="utf-8") if log_path else None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/hooks/{key}", self.hook)
        app.router.add_put("/_admin/secrets/{key}", self.put_secret)
        app.router.add_get("/_admin/state", self.state)
        return app

    async def put_secret(self, request: web.Request) -> web.Response:
        self.secrets[request.match_info["key"]] = (await request.text()).strip()
        return web.json_response({"ok": True})

    def totals(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "arrivals": sum(s.arrivals for s in self.ids.values()),
            "distinct_ids": len(self.ids),
            "applied_ids": sum(1 for s in self.ids.values() if s.applied),
            "applied_effects": sum(s.applied for s in self.ids.values()),
            "ok_2xx": sum(s.ok_2xx for s in self.ids.values()),
            "duplicate_2xx": sum(s.duplicate_2xx for s in self.ids.values()),
            "content_mismatch": sum(s.content_mismatch for s in self.ids.values()),
            "rejected": dict(self.rejected),
            "modes": dict(self.mode_totals),
        }

    async def state(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"totals": self.totals()}
        if request.query.get("summary") not in ("1", "true"):
            body["ids"] = {wid: s.as_json() for wid, s in self.ids.items()}
            body["peer_ports"] = {str(p): n for p, n in self.peer_ports.items()}
        return web.json_response(body)

    def choose(self, wid: str, arrival: int, key: str) -> str:
        if key in self.always_fail:
            return "always_503"
        rng = random.Random(f"{self.seed}:{wid}:{arrival}")
        if rng.random() < self.fail_rate:
            return rng.choice(FAULTS)
        return "slow" if rng.random() < self.slow_rate else "ok"

    async def hook(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peer_ports[int(peer[1])] += 1
        key = request.match_info["key"]
        raw = await request.read()
        wid = request.headers.get("webhook-id", "")
        secret = self.secrets.get(key)
        if secret is None:
            return self._reject("unknown_key", key, wid, 404)
        try:
            verify(request.headers, raw, secret, require="both")
        except WebhookVerificationError as e:
            return self._reject(f"signature:{e.reason}", key, wid, 401)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reject("bad_json", key, wid, 400)
        if body.get("id") != wid:
            return self._reject("id_mismatch", key, wid, 400)

        st = self.ids.get(wid)
        if st is None:
            st = self.ids[wid] = IdState(key=key)
        if st.key != key:  # one webhook-id must always go to the same endpoint
            return self._reject("key_mismatch", key, wid, 400)
        st.arrivals += 1
        attempt = (body.get("audit") or {}).get("dispatch_attempts")
        st.attempt_nos.append(attempt if isinstance(attempt, int) else -1)
        mode = self.choose(wid, st.arrivals, key)
        st.modes.append(mode)
        self.mode_totals[mode] += 1
        self._write({"t": time.time(), "wid": wid, "key": key, "arrival": st.arrivals,
                     "attempt": attempt, "mode": mode})

        if mode in ("always_503", "http_500", "http_502", "http_503"):
            status = 503 if mode == "always_503" else int(mode[5:])
            return web.json_response({"error": mode}, status=status)
        if mode == "http_429":
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": "0"})
        if mode == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return web.json_response({"error": "too late"}, status=504)
        if mode == "reset":
            _reset(request)
            # nothing can be written any more; the sender sees the connection die
            raise asyncio.CancelledError
        if mode == "lost_answer":
            self._apply(st, body)
            await asyncio.sleep(self.hang_seconds)
            return web.json_response({"ok": True, "late": True})
        if mode == "slow":
            await asyncio.sleep(random.Random(f"{self.seed}:{wid}:{st.arrivals}:ms")
                                .uniform(*self.slow_ms) / 1000)
        duplicate = not self._apply(st, body)
        st.ok_2xx += 1
        if duplicate:
            st.duplicate_2xx += 1
        return web.json_response({"ok": True, "duplicate": duplicate})

    def _apply(self, st: IdState, body: dict[str, Any]) -> bool:
        """The one effect of a webhook-id; False when it had already been applied."""
        stable = {k: v for k, v in body.items() if k not in VOLATILE}
        if st.applied:
            if stable != st.body:
                st.content_mismatch += 1
            return False
        st.applied += 1
        st.body = stable
        return True

    def _reject(self, reason: str, key: str, wid: str, status: int) -> web.Response:
        self.rejected[reason] += 1
        self._write({"t": time.time(), "wid": wid, "key": key, "rejected": reason})
        return web.json_response({"error": reason}, status=status)

    def _write(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()


def _reset(request: web.Request) -> None:
    """Abort the connection with an RST (SO_LINGER 0) instead of answering."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _main(args: argparse.Namespace) -> None:
    lo, _, hi = args.slow_ms.partition(",")
    receiver = ChaosReceiver(
        seed=args.seed, fail_rate=args.fail_rate, slow_ms=(int(lo), int(hi or lo)),
        slow_rate=args.slow_rate, hang_seconds=args.hang_seconds,
        always_fail={k for k in args.always_fail_keys.split(",") if k},
        log_path=Path(args.log) if args.log else None)
    runner = web.AppRunner(receiver.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Idempotent webhook receiver that misbehaves")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of requests that fail")
    p.add_argument("--slow-rate", type=float, default=0.2,
                   help="share of successful requests answered slowly")
    p.add_argument("--slow-ms", default="50,200", help="slow answers: MIN,MAX milliseconds")
    p.add_argument("--hang-seconds", type=float, default=2.0,
                   help="how long 'timeout' and 'lost_answer' hang (beyond the sender timeout)")
    p.add_argument("--always-fail-keys", default="", help="comma-separated endpoint keys")
    p.add_argument("--log", help="append one JSON line per request here")
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
