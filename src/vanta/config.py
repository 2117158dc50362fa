"""One Settings object, read from VANTA_* environment variables."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VANTA_", extra="ignore")

    # "auto": production when the database is PostgreSQL, else embedded. The production
    # profile needs an external master key (see bootstrap.build). "test" is embedded without
    # process-wide metrics (tests build many containers in one process).
    profile: Literal["auto", "embedded", "production", "test"] = "auto"
    # Fernet key for the secret store (VANTA_MASTER_KEY). Unset on the embedded profile: a
    # key file in the data folder; on the production profile the platform refuses to start.
    master_key: SecretStr | None = None
    # Where secrets live: "local" (files under data_dir, encrypted with the master key) or
    # "vault" (HashiCorp Vault / OpenBao KV v2; the database keeps vault:<path> references).
    # Vault logs in with VANTA_VAULT_TOKEN, or AppRole VANTA_VAULT_ROLE_ID/_SECRET_ID.
    secrets_backend: Literal["local", "vault"] = "local"
    # Local store only: encrypt each secret under its own data key, wrapped by a KeyWrapper
    # (here the master key, which must then come from VANTA_MASTER_KEY, never a key file).
    secrets_envelope: bool = False
    vault_addr: str | None = None
    vault_token: SecretStr | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_mount: str = "secret"
    vault_prefix: str = "vanta/"
    vault_ca_cert: str | None = None  # a CA bundle for a private TLS certificate
    data_dir: Path = Path(".vanta")
    # The log folder (data_dir/logs): rotated files are rolled up to the object store and
    # deleted locally once older than this many days (`vanta worker rollup`); any older than
    # log_max_days are deleted at rotation even if never rolled up (a bound on disk use).
    log_retention_days: int = Field(default=7, ge=0)
    log_max_days: int = Field(default=30, ge=1)
    # Vault and follower ids as labels of mirror_error_rate / webhook_retry_count.
    metrics_id_labels: bool = True
    database_url: str | None = None  # default: SQLite file in data_dir
    # A streaming replica (PostgreSQL) for reads that may lag: lists, feeds, dashboards.
    database_replica_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None  # base URL the API is reached at; default from host/port
    # An external OIDC provider (Keycloak, Auth0, Okta…); unset: the built-in dev issuer.
    oidc_issuer_url: str | None = None
    # Stable across restarts and ports, so tokens minted by `vanta token` stay valid.
    jwt_issuer: str = "urn:vanta:dev-issuer"
    jwt_audience: str = "vanta-api"
    jwt_leeway_seconds: int = 30
    token_ttl_seconds: int = 3600
    webhook_timeout_seconds: float = 5.0
    # Webhook targets on private, loopback or link-local addresses are refused unless listed
    # here (CIDRs or exact hostnames); cloud metadata addresses need an explicit CIDR.
    webhook_allowlist: list[str] = Field(default_factory=list)
    webhook_allow_private: bool = False
    webhook_per_endpoint_limit: int = 4
    webhook_response_excerpt_bytes: int = 1024
    retry_schedule_seconds: list[float] = Field(default_factory=lambda: [1.0, 5.0, 15.0, 60.0])
    retry_jitter_fraction: float = 0.2
    dispatcher_poll_seconds: float = 0.25
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"  # long-running commands
    gc_young_threshold: int = Field(default=10_000, ge=0)  # long-running commands; 0 = default
    dispatcher_concurrency: int = 32
    # Batches open at once: a batch waiting for a slow send lets another start on the free
    # send slots (1: one batch at a time, every batch as slow as its slowest send).
    dispatcher_max_batches: int = Field(default=16, ge=1, le=64)
    # Short: a live worker renews its leases every quarter of this, so a crashed one frees
    # its rows within one lease while a slow send keeps its row however long it takes.
    dispatcher_lease_seconds: float = 8.0
    run_dispatcher_in_api: bool = True
    # Idempotency keys and rate-limit buckets: Redis in production (shared by every API
    # process); unset = in-process memory (one process only).
    redis_url: str | None = None
    # Redis through Sentinel instead: "host:port,host:port" of the sentinels and the name
    # they know the master by; the client asks them for the master after every failover.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "mymaster"
    # The production profile's bus: one URL or a cluster's, comma-separated.
    nats_url: str = "nats://127.0.0.1:4222"
    # Copies of the JetStream stream: 0 = one per cluster node the client learns of, max 3.
    nats_replicas: int = Field(default=0, ge=0, le=5)
    idempotency_ttl_seconds: int = 86_400
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 20
    # Proxies (CIDRs or addresses) whose X-Forwarded-For is believed; see client_address.
    # Comma-separated or a JSON list, e.g. VANTA_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trust_forwarded_for: bool = False  # replaced by trusted_proxies; true is refused
    # Billing. Keys come from the environment (or a secret manager), never from the repo.
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # tests point this at a local Stripe-shaped server
    stripe_price_ids: dict[str, str] = Field(default_factory=dict)  # plan id -> price id
    btcpay_url: str | None = None
    btcpay_api_key: str | None = None
    btcpay_store_id: str | None = None
    btcpay_webhook_secret: str | None = None
    billing_grace_days: int = 3
    # Object store for audit exports, trade-log rollups and dead-letter archives: set a bucket
    # for S3 (any S3-compatible endpoint); unset = files under data_dir/objects.
    s3_bucket: str | None = None
    s3_endpoint: str | None = None  # None = AWS
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_path_style: bool = True
    # S3 Object Lock: with N > 0 the bucket is created with object lock and every object is
    # written in compliance mode, retained N days (stores without object lock: leave at 0).
    s3_lock_days: int = 0
    # The platform's Ed25519 signing key (audit anchors, replay bundles), by secret-store
    # reference; unset = the reference in <data_dir>/keys/signing-key.ref, made on first use.
    signing_key_ref: str | None = None
    # How often the scheduler signs the audit chain's head into the object store (0 = never).
    audit_anchor_interval_seconds: float = 3600.0
    public_app_url: str = "http://127.0.0.1:8000"  # where checkout returns the user
    # Invitations go through the SMTP relay below (smtp_*) from this address; without
    # smtp_host each is written as an .eml file under data_dir/outbox, where the app lists it.
    mail_from: str = "no-reply@vanta.localhost"
    # A manager order for a symbol with no instrument rule at its venue: off (the default on
    # every profile) sizes it on the built-in rules and records instrument_source "default"
    # on the order; on refuses it with 422 unknown_instrument.
    require_instrument_rules: bool = False
    # Reconciliation: `vanta worker reconcile` runs every vault at this interval; a drift
    # threshold for vaults without one of their own; positions older than this are stale.
    reconcile_interval_seconds: float = Field(default=300.0, gt=0)
    reconcile_threshold_bps: int = Field(default=50, ge=0, le=10_000)
    reconcile_stale_after_seconds: float = Field(default=900.0, gt=0)
    # The OS memory folder `vanta ingest-memory` reads when given no folder.
    os_memory_dir: Path | None = None
    # The SMTP relay all mail goes through (one mailer): operator alerts (from smtp_from) and
    # invitations (from mail_from). Unset host: email alert channels are refused (webhook
    # channels still work; alerts never go to the outbox) and invitations stay in the local
    # outbox folder. The password comes from the
    # environment (or a secret manager), never from the repo.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "vanta-alerts@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = 10.0
    # Alerts: one per (kind, subject) in the dedupe window; at most alert_per_kind of a kind
    # and alert_per_subject of one subject per window (see vanta.domain.alerts.AlertPolicy).
    alert_dedupe_seconds: int = Field(default=900, ge=0)
    alert_window_seconds: int = Field(default=3600, ge=1)
    alert_per_kind: int = Field(default=20, ge=1)
    alert_per_subject: int = Field(default=3, ge=1)
    # Vault snapshots to the object store, taken by the scheduler every this many seconds
    # (a day by default; 0 = never; `vanta snapshot VAULT` takes one on demand).
    snapshot_interval_seconds: int = Field(default=86_400, ge=0)
    # Web app (/app): the key signing its session cookies (every API process must share it;
    # unset: a key file in data_dir, made once), the idle timeout, and the OAuth client the
    # app signs in with at VANTA_OIDC_ISSUER_URL (the built-in issuer needs none).
    web_session_secret: SecretStr | None = None
    web_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    web_oidc_client_id: str = "vanta-web"
    web_oidc_client_secret: SecretStr | None = None
    web_oidc_scope: str = "openid"  # what the app asks the provider for at sign-in

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            value = [v.strip() for v in value if isinstance(v, str) and v.strip()]
            for entry in value:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"trusted_proxies: not an IP address or CIDR: "
                                     f"{entry!r}") from None
        return value

    @model_validator(mode="after")
    def _forwarded_for_needs_proxies(self) -> Settings:
        # Believing X-Forwarded-For from any peer lets every client pick its own address.
        if self.trust_forwarded_for:
            raise ValueError("VANTA_TRUST_FORWARDED_FOR is replaced by VANTA_TRUSTED_PROXIES: "
                             "list the proxies (CIDRs) whose X-Forwarded-For is believed")
        return self

    @model_validator(mode="after")
    def _envelope_has_an_external_key(self) -> Settings:
        if self.secrets_envelope and not self.master_key:
            raise ValueError("VANTA_SECRETS_ENVELOPE=true needs VANTA_MASTER_KEY: the data "
                             "keys are wrapped with it, and it must not sit next to them")
        return self

    @model_validator(mode="after")
    def _vault_is_configured(self) -> Settings:
        if self.secrets_backend != "vault":
            return self
        if not self.vault_addr:
            raise ValueError("VANTA_SECRETS_BACKEND=vault needs VANTA_VAULT_ADDR")
        if not self.vault_token and not (self.vault_role_id and self.vault_secret_id):
            raise ValueError("VANTA_SECRETS_BACKEND=vault needs VANTA_VAULT_TOKEN, or "
                             "VANTA_VAULT_ROLE_ID and VANTA_VAULT_SECRET_ID (AppRole)")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_attempts(self) -> Settings:
        # A lease that lapsed while its delivery is still in flight would let a second
        # worker send the same child: the holder's heartbeat (every quarter of the lease)
        # must have room for a slow database round trip or two.
        if self.dispatcher_lease_seconds < 1.0:
            raise ValueError("dispatcher_lease_seconds must be at least 1 (renewed every "
                             "quarter of it while the row is worked on)")
        return self

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vanta.db').resolve()}"

    @property
    def is_production(self) -> bool:
        if self.profile != "auto":
            return self.profile == "production"
        return self.db_url.startswith(("postgresql", "postgres"))

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def mail_outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def web_session_key_path(self) -> Path:
        return self.data_dir / "keys" / "web-session.key"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "keys" / "dev-issuer.pem"
