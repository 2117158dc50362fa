"""Storage adapters chosen from the settings: the object store (exports) and the shared cache
store (idempotency keys, rate limits, the vault and entitlement caches)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vanta.adapters.cache import open_store
from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.application.ports.cache import CacheStore
from vanta.application.ports.objectstore import ObjectStore
from vanta.config import Settings


def _setting(s: Settings, name: str, env: Mapping[str, str]) -> str | None:
    """A Settings field when it exists, else its VANTA_* environment variable."""
    value = getattr(s, name, None)
    if value is None:
        value = env.get(f"VANTA_{name.upper()}")
    return str(value) if value not in (None, "") else None


def build_object_store(s: Settings, env: Mapping[str, str] | None = None) -> ObjectStore:
    """S3 (any S3-compatible endpoint) when a bucket is configured, else
    ``<data_dir>/objects``. Credentials come from the usual ``AWS_*`` variables."""
    env = os.environ if env is None else env
    bucket = _setting(s, "s3_bucket", env)
    if bucket is None:
        return LocalObjectStore(s.data_dir / "objects")
    from vanta.adapters.objectstore.s3 import S3Config, S3ObjectStore
    path_style = (_setting(s, "s3_path_style", env) or "true").lower() not in ("0", "false",
                                                                               "no")
    return S3ObjectStore(S3Config(
        bucket=bucket, endpoint_url=_setting(s, "s3_endpoint", env),
        region=_setting(s, "s3_region", env) or "us-east-1",
        prefix=_setting(s, "s3_prefix", env) or "", path_style=path_style,
        lock_days=int(_setting(s, "s3_lock_days", env) or 0),
        access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        session_token=env.get("AWS_SESSION_TOKEN") or None))


def build_cache_store(s: Settings) -> CacheStore:
    """Redis through Sentinel when ``redis_sentinels`` is set, else Redis when ``redis_url``
    is set (shared by every API process), else in-process."""
    if s.redis_sentinels:
        return sentinel_store(s.redis_sentinels, s.redis_sentinel_master)
    return open_store(s.redis_url)


def sentinel_store(sentinels: str, master: str, timeout_s: float = 2.0) -> CacheStore:
    """A Redis store on whichever server the sentinels name master (redis-py's Sentinel:
    a lost connection asks them again, so a failover only costs the calls made meanwhile)."""
    from redis.asyncio.sentinel import Sentinel

    from vanta.adapters.cache.redis_store import RedisStore
    nodes = []
    for entry in sentinels.split(","):
        host, _, port = entry.strip().rpartition(":")
        nodes.append((host or "127.0.0.1", int(port or 26379)))
    client = Sentinel(nodes, socket_timeout=timeout_s).master_for(
        master, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    return RedisStore("", client=client)
