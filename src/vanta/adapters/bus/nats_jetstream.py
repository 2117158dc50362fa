"""The bus on NATS JetStream (nats-py): a file-backed work-queue stream, durable pull
consumers with explicit acks, and server-side de-duplication by ``Nats-Msg-Id``.

The connection reconnects forever (exponential backoff with jitter, capped), so restarting
NATS never kills a worker: publishes fail while it is away (the relay keeps the outbox rows
and tries again), pulls time out and resume, and acks that were lost come back as
redeliveries that the consumer recognises and skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from vanta.application.bus import Handler, run_handler

log = logging.getLogger("vanta.bus.nats")

STREAM_NAME_IN_USE = 10058  # JetStream: a stream of that name exists with another config
DEFAULT_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class JetStreamConfig:
    # One server, or a comma-separated list of a cluster's servers: the client connects to
    # any of them and fails over to the others (and to those the cluster gossips).
    url: str = DEFAULT_URL
    stream: str = "VANTA_MIRROR"
    subjects: Sequence[str] = ("mirror.>",)
    storage: StorageType = StorageType.FILE
    # Copies of the stream (its consumers inherit it); 0: one per cluster node, at most 3.
    replicas: int = 1
    duplicate_window_s: float = 120.0
    max_age_s: float = 7 * 86_400.0  # what no consumer ever took is dropped after a week
    # Consumer. With a backoff the server waits backoff[n-1] for the ack of delivery n (the
    # first entry is the ack wait); a handler that needs longer calls in_progress(), which
    # the dispatch consumer does every 2 s, so a dead consumer's messages come again soon.
    ack_wait_s: float = 6.0
    backoff_s: Sequence[float] = (6.0, 10.0, 30.0, 60.0)
    max_deliver: int = 10
    max_ack_pending: int = 1_000
    error_nak_delay_s: float = 1.0  # a handler that raised: try again after this long
    # Client.
    client_name: str = "vanta"
    connect_timeout_s: float = 2.0
    reconnect_min_s: float = 0.25
    reconnect_max_s: float = 5.0
    # A pull refused while the cluster elects the consumer's new leader is retried at least
    # this often: the election takes seconds, and a longer backoff only adds to the stall.
    pull_retry_max_s: float = 1.0
    publish_timeout_s: float = 2.0
    # A pull that has been handed part of its batch can keep those messages until it expires
    # (measured with nats-py: up to the whole timeout, with a second consumer pulling on the
    # same durable), so pulls expire soon: a message waits at most this long in a pull.
    fetch_timeout_s: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)  # passed to nats.connect


def server_urls(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` -> both URLs (the VANTA_NATS_URL list form)."""
    return [u.strip() for u in url.split(",") if u.strip()]


def _ack_wait(cfg: JetStreamConfig) -> float:
    return cfg.backoff_s[0] if cfg.backoff_s else cfg.ack_wait_s


class NatsMessage:
    """A JetStream delivery. Settling calls never raise: a lost ack or nak only means the
    message is delivered again later, which every handler here tolerates."""

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.settled = False

    @property
    def subject(self) -> str:
        return self._msg.subject

    @property
    def data(self) -> bytes:
        return self._msg.data

    @property
    def num_delivered(self) -> int:
        try:
            return int(self._msg.metadata.num_delivered)
        except Exception:  # not a JetStream message
            return 1

    @property
    def headers(self) -> Mapping[str, str]:
        return self._msg.headers or {}

    async def _send(self, what: str, op: Any) -> None:
        try:
            await op
        except Exception as e:
            log.warning("could not %s a message; it will be delivered again", what,
                        extra={"subject": self.subject, "error": repr(e)})

    async def ack(self) -> None:
        self.settled = True
        await self._send("ack", self._msg.ack())

    async def nak(self, delay_s: float | None = None) -> None:
        self.settled = True
        # Always an explicit delay: a bare nak would follow the consumer's backoff instead.
        await self._send("nak", self._msg.nak(delay=max(delay_s or 0.0, 0.001)))

    async def in_progress(self) -> None:
        await self._send("extend", self._msg.in_progress())


class NatsSubscription:
    def __init__(self, bus: NatsJetStreamBus, subject: str, durable: str, handler: Handler,
                 concurrency: int) -> None:
        self._bus = bus
        self._subject = subject
        self._durable = durable
        self._handler = handler
        self._concurrency = max(1, concurrency)
        self._stop = asyncio.Event()
        self._slot = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._psub: JetStreamContext.PullSubscription | None = None
        self._puller = asyncio.create_task(self._pull(), name=f"nats-pull:{durable}")

    async def _bind(self) -> JetStreamContext.PullSubscription:
        await self._bus.ensure_consumer(self._subject, self._durable)
        return await self._bus.js.pull_subscribe_bind(durable=self._durable,
                                                      stream=self._bus.config.stream)

    async def _unbind(self) -> None:
        psub, self._psub = self._psub, None
        if psub is not None:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _pull(self) -> None:
        cfg = self._bus.config
        delay = cfg.reconnect_min_s
        while not self._stop.is_set():
            free = self._concurrency - len(self._tasks)
            if free <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            try:
                if self._psub is None:
                    self._psub = await self._bind()
                msgs = await self._psub.fetch(batch=free, timeout=cfg.fetch_timeout_s)
            except TimeoutError:  # nothing to do (or the server is away: the client reconnects)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # The consumer or stream may be gone (a server that lost its store): bind anew.
                log.warning("pull failed; retrying", extra={"durable": self._durable,
                                                            "error": repr(e), "in_s": delay})
                await self._unbind()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(cfg.pull_retry_max_s, delay * 2)
                continue
            delay = cfg.reconnect_min_s
            for m in msgs:
                self._spawn(NatsMessage(m))

    def _spawn(self, msg: NatsMessage) -> None:
        t = asyncio.create_task(self._run(msg))
        self._tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[None]) -> None:
        self._tasks.discard(t)
        self._slot.set()

    async def _run(self, msg: NatsMessage) -> None:
        await run_handler(self._handler, msg, self._bus.config.error_nak_delay_s)

    async def _release_leftovers(self) -> None:
        """Messages a late pull response left in the inbox go back at once (not after the ack
        wait), so a rolling restart hands them straight to the other workers."""
        sub = getattr(self._psub, "_sub", None)
        queue = getattr(sub, "_pending_queue", None)
        while queue is not None and not queue.empty():
            m = queue.get_nowait()
            if m.reply and not (m.headers or {}).get("Status"):
                await NatsMessage(m).nak(None)

    async def drain(self) -> None:
        self._stop.set()
        self._slot.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._puller
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._release_leftovers()
        await self._unbind()
        self._bus._forget(self)

    async def cancel(self) -> None:
        self._stop.set()
        self._puller.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(self._puller, *list(self._tasks), return_exceptions=True)
        await self._unbind()
        self._bus._forget(self)


class NatsJetStreamBus:
    """Use ``await NatsJetStreamBus.connect(config)``; it waits (forever) for the server."""

    def __init__(self, config: JetStreamConfig) -> None:
        self.config = config
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._subs: list[NatsSubscription] = []
        self._closing = False

    @classmethod
    async def connect(cls, config: JetStreamConfig | None = None,
                      **overrides: Any) -> NatsJetStreamBus:
        bus = cls(replace(config or JetStreamConfig(), **overrides))
        await bus.open()
        return bus

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("the bus is not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the bus is not connected")
        return self._js

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def _reconnect_delay(self, attempts: int) -> float:
        c = self.config
        base = min(c.reconnect_max_s, c.reconnect_min_s * (2 ** min(attempts, 16)))
        return base * random.uniform(0.8, 1.2)

    def _next_server(self, servers: Sequence[Any], _info: Any) -> tuple[Any, float]:
        """The server with the fewest failed attempts since it last worked, and the wait
        before trying it. Choosing none would make nats-py try the first server of its pool
        again and again: a worker whose pool starts with a dead node never reaches the live
        ones. Backing off by the fewest failures means the wait grows only once every
        server has failed."""
        best = min(servers, key=lambda s: s.reconnects)  # ties: pool order (shuffled)
        return best, self._reconnect_delay(best.reconnects)

    async def open(self) -> None:
        c = self.config

        async def on_error(e: Exception) -> None:
            log.warning("nats connection error", extra={"error": repr(e)})

        async def on_disconnected() -> None:
            if self._closing:
                return
            log.warning("nats disconnected; reconnecting", extra={"url": c.url})

        async def on_reconnected() -> None:
            log.info("nats reconnected", extra={"url": c.url})

        options: dict[str, Any] = {
            "servers": server_urls(c.url), "name": c.client_name, "allow_reconnect": True,
            "max_reconnect_attempts": -1,  # forever: a NATS restart must not kill a worker
            "reconnect_time_wait": c.reconnect_min_s, "connect_timeout": c.connect_timeout_s,
            "error_cb": on_error, "disconnected_cb": on_disconnected,
            "reconnected_cb": on_reconnected,
        }
        if "reconnect_to_server_handler" in inspect.signature(NatsClient.connect).parameters:
            # nats-py >= 2.15: every server in turn, with exponential backoff per round
            options["reconnect_to_server_handler"] = self._next_server
        options.update(c.extra)
        nc = NatsClient()
        await nc.connect(**options)
        self._nc = nc
        self._js = nc.jetstream(timeout=c.publish_timeout_s)
        await self.ensure_stream()

    def cluster_size(self) -> int:
        """Servers this client knows: those configured plus those the cluster gossips."""
        return len({(u.hostname, u.port) for u in self.nc.servers})

    async def ensure_stream(self) -> None:
        c = self.config
        replicas = c.replicas or min(3, self.cluster_size())
        cfg = StreamConfig(name=c.stream, subjects=list(c.subjects),
                           retention=RetentionPolicy.WORK_QUEUE, storage=c.storage,
                           num_replicas=replicas, duplicate_window=c.duplicate_window_s,
                           max_age=c.max_age_s, discard=DiscardPolicy.OLD)
        try:
            await self.js.add_stream(cfg)
        except nats.js.errors.BadRequestError as e:
            if e.err_code != STREAM_NAME_IN_USE:
                raise
            try:
                await self.js.update_stream(cfg)
            except nats.js.errors.APIError as e2:
                log.warning("stream exists with another configuration; keeping it",
                            extra={"stream": c.stream, "error": repr(e2)})

    async def ensure_consumer(self, subject: str, durable: str) -> None:
        c = self.config
        cfg = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                             deliver_policy=DeliverPolicy.ALL, filter_subject=subject,
                             ack_wait=_ack_wait(c), max_deliver=c.max_deliver,
                             backoff=list(c.backoff_s) or None,
                             max_ack_pending=c.max_ack_pending)
        try:
            await self.js.add_consumer(c.stream, cfg)
        except nats.js.errors.NotFoundError:
            await self.ensure_stream()
            await self.js.add_consumer(c.stream, cfg)
        except nats.js.errors.BadRequestError as e:
            # A durable created earlier with settings the server will not change in place is
            # used as it is; anything else (e.g. a second durable on the same subjects of a
            # work-queue stream) is an error worth stopping for.
            try:
                await self.js.consumer_info(c.stream, durable)
            except nats.js.errors.NotFoundError:
                raise e from None
            log.warning("consumer exists with another configuration; using it",
                        extra={"durable": durable, "error": repr(e)})

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        hdrs = {**(headers or {}), "Nats-Msg-Id": msg_id}
        try:
            ack = await self.js.publish(subject, payload, timeout=self.config.publish_timeout_s,
                                        headers=hdrs)
        except nats.js.errors.NoStreamResponseError:
            # the server is back but lost its store: make the stream again, then publish
            await self.ensure_stream()
            ack = await self.js.publish(subject, payload, timeout=self.config.publish_timeout_s,
                                        headers=dict(hdrs))
        return not ack.duplicate

    async def subscribe(self, subject: str, durable: str, handler: Handler, *,
                        concurrency: int = 1) -> NatsSubscription:
        await self.ensure_consumer(subject, durable)
        sub = NatsSubscription(self, subject, durable, handler, concurrency)
        self._subs.append(sub)
        return sub

    def _forget(self, sub: NatsSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    async def delete_stream(self) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_stream(self.config.stream)

    async def close(self) -> None:
        self._closing = True
        for s in list(self._subs):
            await s.cancel()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.close()
