"""A follower-side webhook receiver that verifies both signatures and applies each
``webhook-id`` once. ``vanta demo`` and the end-to-end tests use it; it is also a worked
example of what an integrator's endpoint should do.

Run standalone: ``python -m vanta.devpeers.receiver --port 0 --port-file PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from vanta.receiving import WebhookVerificationError, verify


@dataclass
class Delivery:
    key: str
    webhook_id: str
    received_at: float
    verified: bool
    duplicate: bool
    reason: str | None
    body: dict[str, Any] | None


class Receiver:
    def __init__(self, log_path: Path | None = None) -> None:
        self.secrets: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self.applied: dict[str, dict[str, Any]] = {}  # webhook-id -> body of its one effect
        self._log = log_path.open("a", encoding="utf-8") if log_path else None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/hooks/{key}", self.hook)
        app.router.add_put("/_admin/secrets/{key}", self.put_secret)
        app.router.add_get("/_admin/deliveries", self.list_deliveries)
        return app

    async def put_secret(self, request: web.Request) -> web.Response:
        self.secrets[request.match_info["key"]] = (await request.text()).strip()
        return web.json_response({"ok": True})

    async def list_deliveries(self, _: web.Request) -> web.Response:
        return web.json_response({"deliveries": [asdict(d) for d in self.deliveries],
                                  "applied": self.applied})

    async def hook(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        raw = await request.read()
        wid = request.headers.get("webhook-id", "")
        secret = self.secrets.get(key)
        if secret is None:
            self._record(Delivery(key, wid, time.time(), False, False, "unknown_key", None))
            return web.json_response({"error": "unknown endpoint"}, status=404)
        try:
            verify(request.headers, raw, secret, require="both")
        except WebhookVerificationError as e:
            self._record(Delivery(key, wid, time.time(), False, False, e.reason, None))
            return web.json_response({"error": e.reason}, status=401)
        body = json.loads(raw)
        duplicate = wid in self.applied
        if not duplicate:
            self.applied[wid] = body  # the one effect of this webhook-id
        self._record(Delivery(key, wid, time.time(), True, duplicate, None, body))
        return web.json_response({"ok": True, "duplicate": duplicate})

    def _record(self, d: Delivery) -> None:
        self.deliveries.append(d)
        if self._log is not None:
            self._log.write(json.dumps(asdict(d)) + "\n")
            self._log.flush()


async def start(receiver: Receiver, host: str = "127.0.0.1",
                port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, sock.getsockname()[1]


async def _main(args: argparse.Namespace) -> None:
    receiver = Receiver(Path(args.log) if args.log else None)
    runner, port = await start(receiver, args.host, args.port)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description="Verifying webhook receiver")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()
