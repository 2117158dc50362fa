"""uvicorn's h11 protocol with a problem+json answer to an oversized request head.

uvicorn answers a head larger than h11's limit with a bare ``400`` (text/plain) and closes
the connection at once; a client still sending its (say 1 MB) token then sees a connection
reset instead of the answer. Here such a head gets ``431 request_header_too_large``
(problem+json, like every other error), and the connection is closed gracefully: our side is
shut for writing and what the client still sends is read and dropped (up to ``DRAIN_BYTES``
or ``DRAIN_SECONDS``), so the client's kernel does not reset the connection before it has
read the answer. Other protocol errors keep uvicorn's 400.
"""

from __future__ import annotations

import re
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from vanta.entrypoints.api.header_limit import MAX_HEADER_BYTES, problem_body

__all__ = ["DRAIN_BYTES", "DRAIN_SECONDS", "LimitedH11Protocol"]

DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 5.0
_END_OF_HEAD = re.compile(rb"\n\r?\n")


class LimitedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drained: int | None = None  # bytes dropped after a 431; None: not draining

    def data_received(self, data: bytes) -> None:
        if self._drained is None:
            super().data_received(data)
            return
        self._drained += len(data)
        if self._drained > DRAIN_BYTES:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        buffered, _ = self.conn.trailing_data
        if len(buffered) <= MAX_HEADER_BYTES or _END_OF_HEAD.search(buffered):
            super().send_400_response(msg)  # a malformed request, not an oversized head
            return
        body = problem_body()
        headers = [(b"content-type", b"application/problem+json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=431, headers=headers,
                                   reason=b"Request Header Fields Too Large"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self._drained = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)
