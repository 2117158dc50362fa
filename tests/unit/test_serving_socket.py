"""The API's pre-bound socket: accepted connections must have Nagle's algorithm off, or every
response body on a kept-alive connection waits ~40 ms behind its headers."""

from __future__ import annotations

import asyncio
import socket

from vanta.entrypoints.cli.serving import bind


async def test_connections_accepted_on_the_api_socket_have_tcp_nodelay() -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def accepted(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        raw = w.get_extra_info("socket")
        seen.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        w.close()

    server = await asyncio.start_server(accepted, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
