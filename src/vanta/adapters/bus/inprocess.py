"""An asyncio message bus with JetStream's work-queue semantics, inside one process.

For the embedded profile (relay and consumers in one process) and for tests. Messages live in
memory only: a process restart loses what was not acked, which is harmless because the
outbox in the database is the source of truth and the relay publishes again whatever was not
completed once its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vanta.application.bus import Handler, run_handler

log = logging.getLogger("vanta.bus.inprocess")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject wildcards: ``*`` matches one token, a final ``>`` one or more."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return i == len(p) - 1 and len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@dataclass(eq=False)
class _Stored:
    seq: int
    subject: str
    data: bytes
    delivered: int = 0  # deliveries so far
    token: int = 0      # the delivery a nak / in_progress must come from
    headers: dict[str, str] | None = None


@dataclass(eq=False)
class _Durable:
    name: str
    filter: str
    ack_wait_s: float
    max_deliver: int
    backoff: Sequence[float]
    clock: Callable[[], float]
    msgs: dict[int, _Stored] = field(default_factory=dict)  # unacked, by sequence
    waiting: dict[int, float] = field(default_factory=dict)  # seq -> when it is due
    heap: list[tuple[float, int]] = field(default_factory=list)
    inflight: dict[int, float] = field(default_factory=dict)  # seq -> ack deadline
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def ack_wait_for(self, delivered: int) -> float:
        if self.backoff:
            return self.backoff[min(delivered, len(self.backoff)) - 1]
        return self.ack_wait_s

    def add(self, m: _Stored, due: float = 0.0) -> None:
        self.msgs[m.seq] = m
        self._queue(m.seq, due)

    def _queue(self, seq: int, due: float) -> None:
        self.waiting[seq] = due
        heapq.heappush(self.heap, (due, seq))
        self.changed.set()

    def _retry_or_drop(self, m: _Stored, due: float) -> None:
        self.inflight.pop(m.seq, None)
        if 0 < self.max_deliver <= m.delivered:
            log.warning("message dropped after max_deliver deliveries",
                        extra={"durable": self.name, "subject": m.subject, "seq": m.seq})
            self.msgs.pop(m.seq, None)
            return
        self._queue(m.seq, due)

    def sweep(self, now: float) -> None:
        """Deliveries whose ack wait ran out come again (a dead or stuck worker)."""
        for seq, deadline in list(self.inflight.items()):
            if deadline <= now:
                self._retry_or_drop(self.msgs[seq], now)

    def take(self, now: float) -> _Stored | None:
        while self.heap and self.heap[0][0] <= now:
            due, seq = heapq.heappop(self.heap)
            if self.waiting.get(seq) != due:
                continue  # stale entry: acked, or queued again with another due time
            del self.waiting[seq]
            m = self.msgs[seq]
            m.delivered += 1
            m.token += 1
            self.inflight[seq] = now + self.ack_wait_for(m.delivered)
            return m
        return None

    def next_event_in(self, now: float) -> float | None:
        times = list(self.inflight.values())
        while self.heap and self.waiting.get(self.heap[0][1]) != self.heap[0][0]:
            heapq.heappop(self.heap)
        if self.heap:
            times.append(self.heap[0][0])
        return max(0.0, min(times) - now) if times else None

    async def next(self, stop: asyncio.Event) -> _Stored | None:
        while not stop.is_set():
            now = self.clock()
            self.sweep(now)
            m = self.take(now)
            if m is not None:
                return m
            timeout = self.next_event_in(now)
            self.changed.clear()
            waiters = {asyncio.ensure_future(self.changed.wait()),
                       asyncio.ensure_future(stop.wait())}
            try:
                await asyncio.wait(waiters, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        return None

    # the message's side
    def ack(self, m: _Stored) -> None:
        if self.msgs.pop(m.seq, None) is not None:
            self.inflight.pop(m.seq, None)
            self.waiting.pop(m.seq, None)

    def nak(self, m: _Stored, token: int, delay_s: float) -> None:
        if m.seq in self.inflight and m.token == token:
            self._retry_or_drop(m, self.clock() + max(0.0, delay_s))

    def in_progress(self, m: _Stored, token: int) -> None:
        if m.seq in self.inflight and m.token == token:
            self.inflight[m.seq] = self.clock() + self.ack_wait_for(m.delivered)


class InProcessMessage:
    def __init__(self, durable: _Durable, stored: _Stored) -> None:
        self._durable = durable
        self._stored = stored
        self._token = stored.token
        self._num = stored.delivered
        self.settled = False

    @property
    def subject(self) -> str:
        return self._stored.subject

    @property
    def data(self) -> bytes:
        return self._stored.data

    @property
    def num_delivered(self) -> int:
        return self._num

    @property
    def headers(self) -> Mapping[str, str]:
        return self._stored.headers or {}

    async def ack(self) -> None:
        self.settled = True
        self._durable.ack(self._stored)

    async def nak(self, delay_s: float | None = None) -> None:
        self.settled = True
        self._durable.nak(self._stored, self._token, delay_s or 0.0)

    async def in_progress(self) -> None:
        self._durable.in_progress(self._stored, self._token)


class InProcessSubscription:
    def __init__(self, durable: _Durable, handler: Handler, concurrency: int,
                 error_nak_delay_s: float, on_close: Callable[[InProcessSubscription], None]
                 ) -> None:
        self._durable = durable
        self._on_close = on_close
        self._handler = handler
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._nak_delay = error_nak_delay_s
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._puller = asyncio.create_task(self._pull(), name=f"bus-pull:{durable.name}")

    async def _pull(self) -> None:
        while not self._stop.is_set():
            await self._sem.acquire()
            stored = await self._durable.next(self._stop)
            if stored is None:
                self._sem.release()
                return
            t = asyncio.create_task(self._run(InProcessMessage(self._durable, stored)))
            self._tasks.add(t)
            t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[None]) -> None:
        self._tasks.discard(t)
        self._sem.release()

    async def _run(self, msg: InProcessMessage) -> None:
        await run_handler(self._handler, msg, self._nak_delay)

    async def drain(self) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._puller
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._on_close(self)

    async def cancel(self) -> None:
        self._stop.set()
        self._puller.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(self._puller, *list(self._tasks), return_exceptions=True)
        self._on_close(self)


class InProcessBus:
    """Work-queue retention: a message belongs to the one durable whose filter matches it
    (kept until such a durable exists) and is forgotten once acked."""

    def __init__(self, *, duplicate_window_s: float = 120.0, ack_wait_s: float = 30.0,
                 max_deliver: int = -1, backoff: Sequence[float] = (),
                 error_nak_delay_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.duplicate_window_s = duplicate_window_s
        self.ack_wait_s = ack_wait_s
        self.max_deliver = max_deliver
        self.backoff = tuple(backoff)
        self.error_nak_delay_s = error_nak_delay_s
        self._clock = clock
        self._seq = itertools.count(1)
        self._seen: OrderedDict[str, float] = OrderedDict()  # msg id -> end of its window
        self._durables: dict[str, _Durable] = {}
        self._unclaimed: list[_Stored] = []
        self._subs: list[InProcessSubscription] = []

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now + self.duplicate_window_s
        m = _Stored(next(self._seq), subject, bytes(payload),
                    headers=dict(headers) if headers else None)
        for d in self._durables.values():
            if subject_matches(d.filter, subject):
                d.add(m)
                break
        else:
            self._unclaimed.append(m)
        return True

    async def subscribe(self, subject: str, durable: str, handler: Handler, *,
                        concurrency: int = 1) -> InProcessSubscription:
        d = self._durables.get(durable)
        if d is None:
            d = _Durable(durable, subject, self.ack_wait_s, self.max_deliver, self.backoff,
                         self._clock)
            self._durables[durable] = d
            keep = []
            for m in self._unclaimed:
                if subject_matches(subject, m.subject):
                    d.add(m)
                else:
                    keep.append(m)
            self._unclaimed = keep
        elif d.filter != subject:
            raise ValueError(f"durable {durable} already filters {d.filter}, not {subject}")
        sub = InProcessSubscription(d, handler, concurrency, self.error_nak_delay_s,
                                    self._forget)
        self._subs.append(sub)
        return sub

    def _forget(self, sub: InProcessSubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def pending_count(self, durable: str) -> int:
        """Messages of the durable not acked yet (waiting or in flight)."""
        d = self._durables.get(durable)
        return len(d.msgs) if d is not None else 0

    async def close(self) -> None:
        for s in list(self._subs):
            await s.cancel()
