"""Running the API (and the in-process dispatcher) under uvicorn on a pre-bound socket."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn

from vanta.bootstrap import Container
from vanta.entrypoints.api.app import create_app
from vanta.entrypoints.api.header_limit import MAX_HEADER_BYTES
from vanta.entrypoints.cli.http_protocol import LimitedH11Protocol


def bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol says
    # TCP; with protocol 0, Nagle holds each response body behind its headers (~40 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def write_port_file(path: Path, port: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(str(port))
    tmp.replace(path)


async def serve(container: Container, sock: socket.socket, *, run_dispatcher: bool = True,
                log_level: str = "warning", ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM or until ``stop`` is set; shuts down gracefully."""
    app = create_app(container, run_dispatcher=run_dispatcher)
    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any loopback
    # peer; the client address is decided by client_address under the project's settings.
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on",
                                           access_log=False, proxy_headers=False,
                                           http=LimitedH11Protocol,
                                           h11_max_incomplete_event_size=MAX_HEADER_BYTES))

    async def watch() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        if ready is not None:
            ready.set()
        if stop is not None:
            await stop.wait()
            server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
