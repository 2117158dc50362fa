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
Tracer        OpenTelemetry (OTLP) when     same
              OTEL_EXPORTER_OTLP_ENDPOINT
              is set, else no-op
Journal       the log folder when the       none recorded
              command configured logging
Signer        Ed25519, key in the           same
              secret store (signing.py)
Brokers       lazy adapters (brokers.py)    same
Mailer        SMTP, or .eml files in        same
              data_dir/outbox (mail.py);
              alerts use it only with SMTP
============  ===========================  ======================================

The object store and the cache store come from :mod:`vanta.bootstrap.stores` (S3 or files,
Redis or memory, by setting); the payment providers from :mod:`vanta.bootstrap.billing` (held
on the container); the workers' bus from :mod:`vanta.bootstrap.bus` (in-process or NATS, by
command); logging from :mod:`vanta.bootstrap.logging`. Entrypoints receive all of these from
here and never import an adapter themselves (import-linter contract (d)).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from vanta.adapters import metrics as prometheus
from vanta.adapters.db.engine import SqliteChangeCounter, make_engine, sqlite_change_counter
from vanta.adapters.db.migrate import upgrade, upgrade_async
from vanta.adapters.db.outbox_listener import wake_on_commit
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.identity.dev_issuer import DevIssuer
from vanta.adapters.identity.oidc import OidcProvider
from vanta.adapters.identity.token_exchange import OidcTokenExchange
from vanta.adapters.identity.verifier import TokenVerifier as JwksTokenVerifier
from vanta.adapters.metrics import PrometheusMetrics, PrometheusReconcileMetrics
from vanta.adapters.secrets.cached import CachedSecrets
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.webhooks.sender import AiohttpWebhookSender
from vanta.adapters.webhooks.ssrf import TargetPolicy
from vanta.adapters.webhooks.vetter import PolicyTargetVetter
from vanta.application.alerts import AlertDelivery
from vanta.application.billing import BillingProviders
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.ports.delivery import TargetVetter
from vanta.application.ports.identity import TokenExchange, TokenVerifier
from vanta.application.ports.mailer import Mailer, MailOutbox
from vanta.application.ports.metrics import NO_METRICS, Metrics
from vanta.application.ports.objectstore import ObjectStore
from vanta.application.ports.reconciliation import NoReconcileMetrics, ReconcileMetrics
from vanta.application.ports.secrets import SecretStore
from vanta.application.ports.signing import Signer
from vanta.application.ports.tracer import NOOP_TRACER, Tracer
from vanta.application.principal import Principal
from vanta.application.reconcile import ReconcileSettings
from vanta.bootstrap.alerts import build_alert_delivery
from vanta.bootstrap.billing import build_billing_providers
from vanta.bootstrap.brokers import broker_registry
from vanta.bootstrap.logging import journal
from vanta.bootstrap.mail import build_mailer
from vanta.bootstrap.secrets import key_wrapper, vault_store
from vanta.bootstrap.signing import build_signer
from vanta.bootstrap.stores import build_object_store
from vanta.bootstrap.telemetry import process_tracer, shutdown_tracing
from vanta.config import Settings

__all__ = ["Container", "MasterKeyMissing", "build", "upgrade_database"]


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    secrets: SecretStore
    issuer: DevIssuer
    verifier: TokenVerifier[Principal]
    sender: AiohttpWebhookSender
    dispatcher: Dispatcher
    outbox_written: asyncio.Event = field(default_factory=asyncio.Event)
    oidc: OidcProvider | None = None
    metrics: Metrics = NO_METRICS
    tracer: Tracer = NOOP_TRACER
    # the payment providers the settings configure (none by default); closed by close()
    billing: BillingProviders = field(default_factory=BillingProviders)
    # the OAuth token requests of the OIDC provider; None without one
    token_exchange: TokenExchange | None = None
    # refuses webhook/broker URLs the sender would never connect to, when they are given;
    # build() sets it from the sender's policy
    vetter: TargetVetter | None = None
    # invitations and other mail to people; the outbox is set when mail stays local
    mailer: Mailer | None = None
    mail_outbox: MailOutbox | None = None
    # sends the operators' alerts the scheduler finds queued (bootstrap.alerts)
    alerts: AlertDelivery | None = None
    reconcile_metrics: ReconcileMetrics = field(default_factory=NoReconcileMetrics)
    _objects: ObjectStore | None = field(default=None, init=False, repr=False)
    # the platform's signing key (audit anchors, replay bundles), by secret-store reference
    signer: Signer | None = None
    # VANTA_DATABASE_REPLICA_URL: a streaming replica for reads that tolerate lag
    replica_engine: AsyncEngine | None = None

    def reconcile_settings(self) -> ReconcileSettings:
        s = self.settings
        return ReconcileSettings(default_threshold_bps=s.reconcile_threshold_bps,
                                 stale_after=timedelta(seconds=s.reconcile_stale_after_seconds))

    async def start(self) -> None:
        """Work that needs the running loop: the OIDC provider's first JWKS fetch."""
        if self.oidc is not None:
            await self.oidc.start()
            self.verifier = self.oidc.token_verifier(self.settings.jwt_audience,
                                                     leeway=self.settings.jwt_leeway_seconds)

    def object_store(self) -> ObjectStore:
        """Snapshots and exports go here (S3 when a bucket is set, else files); made on
        first use, so commands that never write objects never touch it."""
        if self._objects is None:
            self._objects = build_object_store(self.settings)
        return self._objects

    def uow(self, readonly: bool = False, lag_ok: bool = False) -> SqlUnitOfWork:
        """A unit of work on the primary; ``lag_ok`` (lists, feeds, dashboards: reads that
        may be a moment behind) sends it to the replica when one is configured. Whatever
        decides (expansion, leases, idempotency, billing) never passes ``lag_ok``."""
        if lag_ok and self.replica_engine is not None:
            return SqlUnitOfWork(self.replica_engine, readonly=True)
        return SqlUnitOfWork(self.engine, readonly=readonly)

    async def migrate(self) -> None:
        await upgrade_async(self.settings.db_url)

    async def ping_database(self) -> None:
        """One round trip to the database; raises whatever the driver raises when it is
        away (the API's readiness check)."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    def db_version(self) -> SqliteChangeCounter | None:
        """On SQLite, a cheap callable that changes whenever any connection wrote the file
        (the vault cache's invalidation); close it when done. None elsewhere."""
        return sqlite_change_counter(self.engine)

    def wake_on_commit(self, wakeup: asyncio.Event, stop: asyncio.Event
                       ) -> Coroutine[Any, Any, None] | None:
        """A listener that sets ``wakeup`` as soon as outbox rows are committed, until
        ``stop``; None when the database cannot notify (SQLite: the writing process wakes
        its own workers)."""
        return wake_on_commit(self.engine, wakeup, stop)

    @staticmethod
    def metrics_exposition() -> tuple[bytes, str]:
        """This process's Prometheus metrics: the body and its content type."""
        return prometheus.exposition()

    async def close(self) -> None:
        await self.billing.aclose()
        close_objects = getattr(self._objects, "close", None)  # the S3 store's session
        if close_objects is not None:
            await close_objects()
        if self.dispatcher.brokers is not None:
            await self.dispatcher.brokers.close()
        if self.oidc is not None:
            await self.oidc.aclose()
        await self.sender.close()
        await self.engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()
        self.dispatcher.journal.flush()
        shutdown_tracing()


def _metrics(s: Settings) -> Metrics:
    # Tests build many containers in one process; the Prometheus registry is process-wide.
    return NO_METRICS if s.profile == "test" else PrometheusMetrics(
        id_labels=s.metrics_id_labels)


def _policy(s: Settings) -> TargetPolicy:
    return TargetPolicy(allow_private=s.webhook_allow_private,
                        allowlist=tuple(s.webhook_allowlist))


def _sender(s: Settings) -> AiohttpWebhookSender:
    return AiohttpWebhookSender(
        timeout_seconds=s.webhook_timeout_seconds,
        excerpt_bytes=s.webhook_response_excerpt_bytes,
        connections=max(s.dispatcher_concurrency, 10),
        policy=_policy(s),
        per_endpoint_limit=s.webhook_per_endpoint_limit)


def _dispatch_config(s: Settings) -> DispatchConfig:
    return DispatchConfig(retry_schedule=tuple(s.retry_schedule_seconds),
                          jitter_fraction=s.retry_jitter_fraction,
                          lease=timedelta(seconds=s.dispatcher_lease_seconds),
                          concurrency=s.dispatcher_concurrency,
                          # two waves of sends at most: a batch ends within 2 timeouts,
                          # inside the lease (at least 3 timeouts)
                          batch=2 * s.dispatcher_concurrency,
                          per_endpoint=s.webhook_per_endpoint_limit,
                          max_batches=s.dispatcher_max_batches)


class MasterKeyMissing(RuntimeError):
    """The production profile was asked to start without an external master key."""


def _secret_store(s: Settings) -> SecretStore:
    """The key file in the data folder would decrypt every secret beside it for anyone
    holding a copy of the folder: embedded profile only. Vault needs no master key."""
    if s.secrets_backend == "vault":
        return vault_store(s)
    key = s.master_key.get_secret_value().encode() if s.master_key else None
    if key is None and s.is_production:
        raise MasterKeyMissing(
            "the production profile (a PostgreSQL database or VANTA_PROFILE=production) needs "
            "an external master key: set VANTA_MASTER_KEY to a Fernet key (e.g. from "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`); a key file next to the secrets is "
            "only used on the embedded profile")
    return LocalSecretStore(s.secrets_dir, master_key=key, allow_key_file=not s.is_production,
                            key_wrapper=key_wrapper(s, key))


def build(settings: Settings | None = None) -> Container:
    s = settings or Settings()
    secrets = _secret_store(s)  # checked first: nothing is created when it refuses
    s.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(s.db_url)
    issuer = DevIssuer(s.signing_key_path, issuer=s.jwt_issuer, audience=s.jwt_audience)
    oidc = OidcProvider(s.oidc_issuer_url) if s.oidc_issuer_url else None
    # With a provider, start() replaces this with one limited to its advertised algorithms.
    verifier = JwksTokenVerifier(oidc.jwks if oidc else issuer.jwks,
                                 issuer=oidc.issuer if oidc else s.jwt_issuer,
                                 audience=s.jwt_audience, leeway=s.jwt_leeway_seconds)
    sender = _sender(s)
    mailer, mail_outbox = build_mailer(s)
    metrics = _metrics(s)
    tracer = process_tracer()
    dispatcher = Dispatcher(
        # its bookkeeping commits without waiting for the disk on SQLite (see SYNC_OPTION)
        uow_factory=lambda: SqlUnitOfWork(engine, durable=False), sender=sender,
        secrets=CachedSecrets(secrets), config=_dispatch_config(s), rng=random.Random(),
        brokers=broker_registry(secrets.get), metrics=metrics, tracer=tracer,
        journal=journal())
    return Container(s, engine, secrets, issuer, verifier, sender, dispatcher,
                     outbox_written=dispatcher.wakeup, oidc=oidc, metrics=metrics,
                     tracer=tracer, billing=build_billing_providers(s),
                     token_exchange=OidcTokenExchange(oidc) if oidc else None,
                     vetter=PolicyTargetVetter(_policy(s)), mailer=mailer,
                     mail_outbox=mail_outbox,
                     reconcile_metrics=NoReconcileMetrics() if s.profile == "test"
                     else PrometheusReconcileMetrics(),
                     alerts=build_alert_delivery(s, lambda: SqlUnitOfWork(engine), sender,
                                                 CachedSecrets(secrets), mailer),
                     signer=build_signer(s, secrets),
                     replica_engine=make_engine(s.database_replica_url)
                     if s.database_replica_url else None)


def upgrade_database(settings: Settings) -> None:
    """Every migration, applied to the configured database (``vanta db upgrade``), without
    building a container (no master key needed)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
