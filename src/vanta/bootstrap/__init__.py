"""Composition root: Settings -> adapters -> the application's ports. Nothing happens at
import time. The only place that names concrete adapters for the application.

What each profile (``VANTA_PROFILE``) wires:

============  ===========================  ======================================
port          embedded / production         test
============  ===========================  ======================================
UnitOfWork    SQL (SQLite file, or          same
              PostgreSQL by database_url)
WebhookSender aiohttp, SSRF-vetted          same
SecretStore   local encrypted files         same
Metrics       Prometheus                    none recorded
Tracer        no-op                         no-op
Brokers       lazy adapters (brokers.py)    same
============  ===========================  ======================================

The object store and the cache store come from :mod:`vanta.bootstrap.stores` (S3 or files,
Redis or memory, by setting); the payment providers from :mod:`vanta.bootstrap_billing`; the
bus is chosen by the workers command.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade_async
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.identity.dev_issuer import DevIssuer
from vanta.adapters.identity.oidc import OidcProvider
from vanta.adapters.identity.verifier import TokenVerifier
from vanta.adapters.metrics import PrometheusMetrics
from vanta.adapters.secrets.cached import CachedSecrets
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.webhooks.sender import AiohttpWebhookSender
from vanta.adapters.webhooks.ssrf import TargetPolicy
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.ports.metrics import NO_METRICS, Metrics
from vanta.application.ports.tracer import NOOP_TRACER, Tracer
from vanta.bootstrap.brokers import broker_registry
from vanta.config import Settings

__all__ = ["Container", "build"]


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    secrets: LocalSecretStore
    issuer: DevIssuer
    verifier: TokenVerifier
    sender: AiohttpWebhookSender
    dispatcher: Dispatcher
    outbox_written: asyncio.Event = field(default_factory=asyncio.Event)
    oidc: OidcProvider | None = None
    metrics: Metrics = NO_METRICS
    tracer: Tracer = NOOP_TRACER
    # Billing providers are built by vanta.bootstrap_billing where the API is assembled.

    async def start(self) -> None:
        """Work that needs the running loop: the OIDC provider's first JWKS fetch."""
        if self.oidc is not None:
            await self.oidc.start()
            self.verifier = self.oidc.token_verifier(self.settings.jwt_audience,
                                                     leeway=self.settings.jwt_leeway_seconds)

    def uow(self, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, readonly=readonly)

    async def migrate(self) -> None:
        await upgrade_async(self.settings.db_url)

    async def close(self) -> None:
        if self.dispatcher.brokers is not None:
            await self.dispatcher.brokers.close()
        if self.oidc is not None:
            await self.oidc.aclose()
        await self.sender.close()
        await self.engine.dispose()


def _metrics(profile: str) -> Metrics:
    # Tests build many containers in one process; the Prometheus registry is process-wide.
    return NO_METRICS if profile == "test" else PrometheusMetrics()


def _sender(s: Settings) -> AiohttpWebhookSender:
    return AiohttpWebhookSender(
        timeout_seconds=s.webhook_timeout_seconds,
        excerpt_bytes=s.webhook_response_excerpt_bytes,
        connections=max(s.dispatcher_concurrency, 10),
        policy=TargetPolicy(allow_private=s.webhook_allow_private,
                            allowlist=tuple(s.webhook_allowlist)),
        per_endpoint_limit=s.webhook_per_endpoint_limit)


def _dispatch_config(s: Settings) -> DispatchConfig:
    return DispatchConfig(retry_schedule=tuple(s.retry_schedule_seconds),
                          jitter_fraction=s.retry_jitter_fraction,
                          lease=timedelta(seconds=s.dispatcher_lease_seconds),
                          concurrency=s.dispatcher_concurrency,
                          # two waves of sends at most: a batch ends within 2 timeouts,
                          # inside the lease (at least 3 timeouts)
                          batch=2 * s.dispatcher_concurrency,
                          per_endpoint=s.webhook_per_endpoint_limit)


class MasterKeyMissing(RuntimeError):
    """The production profile was asked to start without an external master key."""


def _secret_store(s: Settings) -> LocalSecretStore:
    """The key file in the data folder would decrypt every secret beside it for anyone
    holding a copy of the folder: embedded profile only."""
    key = s.master_key.get_secret_value().encode() if s.master_key else None
    if key is None and s.is_production:
        raise MasterKeyMissing(
            "the production profile (a PostgreSQL database or VANTA_PROFILE=production) needs "
            "an external master key: set VANTA_MASTER_KEY to a Fernet key (e.g. from "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`); a key file next to the secrets is "
            "only used on the embedded profile")
    return LocalSecretStore(s.secrets_dir, master_key=key, allow_key_file=not s.is_production)


def build(settings: Settings | None = None) -> Container:
    s = settings or Settings()
    secrets = _secret_store(s)  # checked first: nothing is created when it refuses
    s.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(s.db_url)
    issuer = DevIssuer(s.signing_key_path, issuer=s.jwt_issuer, audience=s.jwt_audience)
    oidc = OidcProvider(s.oidc_issuer_url) if s.oidc_issuer_url else None
    # With a provider, start() replaces this with one limited to its advertised algorithms.
    verifier = TokenVerifier(oidc.jwks if oidc else issuer.jwks,
                             issuer=oidc.issuer if oidc else s.jwt_issuer,
                             audience=s.jwt_audience, leeway=s.jwt_leeway_seconds)
    sender = _sender(s)
    metrics = _metrics(s.profile)
    dispatcher = Dispatcher(
        uow_factory=lambda: SqlUnitOfWork(engine), sender=sender,
        secrets=CachedSecrets(secrets), config=_dispatch_config(s), rng=random.Random(),
        brokers=broker_registry(secrets.get), metrics=metrics, tracer=NOOP_TRACER)
    return Container(s, engine, secrets, issuer, verifier, sender, dispatcher,
                     outbox_written=dispatcher.wakeup, oidc=oidc, metrics=metrics,
                     tracer=NOOP_TRACER)
