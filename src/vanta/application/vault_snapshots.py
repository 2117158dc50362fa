"""Vault snapshots in the object store: the vault's settings, its followers' configurations,
their positions and NAVs (and the vault's), and the overlays in force, as of one moment.

Taken by the scheduler once per interval (a day by default) and on demand (``vanta snapshot
VAULT``). Each is one JSON object under an immutable key that sorts by time::

    snapshots/<tenant>/<vault>/<YYYYMMDDTHHMMSS.ffffffZ>-<scheduled|manual>.json

The store records its SHA-256 and checks it on every read; the key and the hash are also
written to the audit log, so a snapshot can be checked against the hash chain. A scheduled
snapshot names the start of its interval, so two schedulers (or a restart) write it once:
the second finds the key taken. ``read_snapshot`` / ``snapshot_at`` read one back, with
exact decimals, for replays."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from vanta.application.ports.objectstore import (
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    sha256_hex,
)
from vanta.application.ports.records_catalog import FollowerRecord, VaultRecord
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.domain.errors import NotFound
from vanta.domain.navs import nav_state

__all__ = ["FORMAT", "SnapshotSchedule", "SnapshotWritten", "VaultSnapshot", "read_snapshot",
           "snapshot_at", "snapshot_key", "take_due_snapshots", "take_snapshot"]

FORMAT = "vanta.vault-snapshot/1"
PREFIX = "snapshots"
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_PAGE = 500


@dataclass(frozen=True)
class SnapshotWritten:
    key: str
    sha256: str
    size: int
    created: bool  # False: this key already held a snapshot (another scheduler wrote it)


@dataclass(frozen=True)
class VaultSnapshot:
    """A snapshot read back: the document as written, with decimals exact again."""

    key: str
    sha256: str
    tenant_id: str
    vault_id: str
    as_of: datetime
    doc: dict[str, Any]

    @property
    def followers(self) -> list[dict[str, Any]]:
        return list(self.doc["followers"])

    def positions(self, follower_id: str) -> dict[str, Decimal]:
        return {s: Decimal(q) for s, q in self.doc["positions"].get(follower_id, {}).items()}

    def nav(self, follower_id: str | None = None) -> Decimal | None:
        """The follower's NAV (the vault's without one) as of the snapshot, if recorded."""
        entry = self.doc["navs"]["vault"] if follower_id is None else \
            self.doc["navs"]["followers"].get(follower_id)
        return Decimal(entry["nav"]) if entry else None


def snapshot_key(tenant_id: str, vault_id: str, as_of: datetime, reason: str) -> str:
    stamp = as_of.astimezone(UTC).strftime(_STAMP)
    return f"{PREFIX}/{tenant_id}/{vault_id}/{stamp}-{reason}.json"


def _plain(v: Any) -> Any:
    """JSON-ready: decimals as exact strings, times in ISO 8601, enums as values."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return getattr(v, "value", v)


def _follower(f: FollowerRecord) -> dict[str, Any]:
    """A follower's configuration; no secret references, and no webhook URL (it may carry a
    token of the follower's), only whether one is set and whether it was disabled."""
    bridge = f.bridged_brokers
    return _plain({
        "follower_id": f.follower_id, "label": f.label, "mode": f.mode, "scale": f.scale,
        "scale_mode": f.scale_mode, "nav_multiplier": f.nav_multiplier,
        "max_pos_usd": f.max_pos_usd, "kill_switch": f.kill_switch, "paused": f.paused,
        "paused_reason": f.paused_reason, "fractional": f.fractional, "plan_id": f.plan_id,
        "overlay_opt_in": f.overlay_opt_in, "protections": dict(f.protections or {}),
        "webhook": f.webhook_url is not None, "webhook_disabled_at": f.webhook_disabled_at,
        "broker": bridge.get("broker") if bridge else None,
        "created_at": f.created_at, "updated_at": f.updated_at})


async def _symbols(uow: UnitOfWork, vault: VaultRecord) -> set[str]:
    """Every symbol the vault ever ordered (a follower may still hold one the manager
    closed): the positions worth asking for."""
    out: set[str] = set()
    after: tuple[datetime, str] | None = None
    while True:
        page = await uow.manager_orders.list(vault.tenant_id, None, _PAGE,
                                             vault_id=vault.vault_id, after=after)
        out.update(o.symbol for o in page)
        if len(page) < _PAGE:
            return out
        after = (page[-1].created_at, page[-1].mo_id)


async def _navs(uow: UnitOfWork, entity: str, ids: Sequence[str],
                at: datetime) -> dict[str, dict[str, Any]]:
    hist = await uow.navs.history(entity, list(ids), at) if ids else {}
    out: dict[str, dict[str, Any]] = {}
    for eid, rows in hist.items():
        st = nav_state(rows, at)
        if st is not None:
            out[eid] = _plain({"nav": st.nav, "peak": st.peak, "day_start": st.day_start,
                               "observed_at": rows[-1][0]})
    return out


async def build_document(uow: UnitOfWork, vault: VaultRecord, at: datetime,
                         reason: str) -> dict[str, Any]:
    followers = await uow.followers.list_for_vault(vault.tenant_id, vault.vault_id)
    ids = [f.follower_id for f in followers]
    symbols = await _symbols(uow, vault)
    for f in followers:  # a follower may trade a mapped symbol
        symbols.update(dict((f.protections or {}).get("symbol_map") or {}).values())
    held = await uow.child_orders.positions(ids, symbols) if ids and symbols else {}
    positions: dict[str, dict[str, str]] = {}
    for (fid, sym), qty in sorted(held.items()):
        if qty != 0:
            positions.setdefault(fid, {})[sym] = str(qty)
    overlays = await uow.overlays.active(vault.vault_id, at)
    return {
        "format": FORMAT, "reason": reason, "as_of": at.isoformat(),
        "tenant_id": vault.tenant_id, "vault_id": vault.vault_id,
        "vault": _plain({"label": vault.label, "rails": dict(vault.rails),
                         "personas": list(vault.personas),
                         "risk_profile": dict(vault.risk_profile), "public": vault.public,
                         "maintenance": vault.maintenance, "created_at": vault.created_at}),
        "followers": [_follower(f) for f in followers],
        "positions": positions,
        "manager_positions": _plain({s: {"qty": q, "venue": v, "last_price": p} for s, (q, v, p)
                                     in (await uow.manager_orders.holdings(
                                         vault.vault_id)).items()}),
        "navs": {"vault": (await _navs(uow, "vault", [vault.vault_id], at)).get(
                     vault.vault_id),
                 "followers": await _navs(uow, "follower", ids, at)},
        "overlays": [_plain({"overlay_id": o.overlay_id, "kind": o.kind, "params": o.params,
                             "applied_at": o.applied_at, "expires_at": o.expires_at})
                     for o in overlays],
    }


async def take_snapshot(uow_factory: UowFactory, store: ObjectStore, *, tenant_id: str,
                        vault_id: str, at: datetime, reason: str = "manual",
                        actor: str = "scheduler",
                        interval_start: datetime | None = None) -> SnapshotWritten:
    """Write the vault's state read now (one transaction; NAVs and overlays as of ``at``,
    the time it is taken); the key and SHA-256 go to the audit log. A scheduled snapshot is
    keyed by its ``interval_start``, so each interval has one. A vault of another tenant is
    not found."""
    async with uow_factory() as uow:
        vault = await uow.vaults.get(tenant_id, vault_id)
        if vault is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        doc = await build_document(uow, vault, at, reason)
    if interval_start is not None:
        doc["interval_start"] = interval_start.isoformat()
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    key = snapshot_key(tenant_id, vault_id, interval_start or at, reason)
    try:
        ref = await store.put(key, data, content_type="application/json",
                              metadata={"format": FORMAT})
    except ObjectExists as e:  # this interval's snapshot was written by someone else
        return SnapshotWritten(key, e.stored_sha256 or "", len(data), created=False)
    if ref.created:
        async with uow_factory() as uow:
            await uow.audit.append(entity="vault", entity_id=vault_id,
                                   action="snapshot_written", actor=actor,
                                   tenant_id=tenant_id,
                                   payload={"key": key, "sha256": ref.sha256,
                                            "size": ref.size, "reason": reason})
            await uow.commit()
    return SnapshotWritten(key, ref.sha256, ref.size, ref.created)


def interval_start(now: datetime, interval: timedelta) -> datetime:
    """The start of the interval ``now`` falls in, counted from the Unix epoch (UTC): daily
    snapshots are stamped midnight UTC."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((now - epoch) // interval) * interval


async def take_due_snapshots(uow_factory: UowFactory, store: ObjectStore, *, now: datetime,
                             interval: timedelta) -> list[SnapshotWritten]:
    """The current interval's snapshot of every vault that has none yet. Idempotent: a
    vault whose key exists is skipped without reading it."""
    start = interval_start(now, interval)
    done: list[SnapshotWritten] = []
    after: tuple[datetime, str] | None = None
    while True:
        async with uow_factory() as uow:
            page = await uow.vaults.page_all(after, _PAGE)
        for v in page:
            if not await store.exists(snapshot_key(v.tenant_id, v.vault_id, start,
                                                   "scheduled")):
                done.append(await take_snapshot(uow_factory, store, tenant_id=v.tenant_id,
                                                vault_id=v.vault_id, at=now,
                                                reason="scheduled", interval_start=start))
        if len(page) < _PAGE:
            return done
        after = (page[-1].created_at, page[-1].vault_id)


@dataclass
class SnapshotSchedule:
    """The scheduler's view: each interval is worked once per process when it starts (and
    again after a failure, no sooner than ``retry_after``), not on every scheduler pass."""

    interval: timedelta
    retry_after: timedelta = timedelta(minutes=1)
    _done: datetime | None = None
    _not_before: datetime | None = None

    async def run_if_due(self, uow_factory: UowFactory,
                         store: ObjectStore | Callable[[], ObjectStore],
                         now: datetime) -> list[SnapshotWritten] | None:
        """None when nothing was due; else what was written (possibly nothing). ``store``
        may be a factory, called only when something is due (a misconfigured store then
        fails once per ``retry_after``, not on every pass)."""
        if self.interval <= timedelta(0):
            return None
        start = interval_start(now, self.interval)
        if start == self._done or (self._not_before is not None and now < self._not_before):
            return None
        self._not_before = now + self.retry_after
        written = await take_due_snapshots(
            uow_factory, store() if callable(store) else store, now=now,
            interval=self.interval)
        self._done, self._not_before = start, None
        return written


async def read_snapshot(store: ObjectStore, key: str,
                        expected_sha256: str | None = None) -> VaultSnapshot:
    """One snapshot back (the store checks the bytes against their recorded hash; give
    ``expected_sha256``, e.g. from the audit log, to check against that too)."""
    data = await store.get(key)
    digest = sha256_hex(data)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ValueError(f"snapshot {key} has sha256 {digest}, expected {expected_sha256}")
    doc = json.loads(data)
    if doc.get("format") != FORMAT:
        raise ValueError(f"snapshot {key}: unknown format {doc.get('format')!r}")
    return VaultSnapshot(key, digest, doc["tenant_id"], doc["vault_id"],
                         datetime.fromisoformat(doc["as_of"]), doc)


async def snapshot_at(store: ObjectStore, tenant_id: str, vault_id: str,
                      at: datetime) -> VaultSnapshot:
    """The latest snapshot of the vault taken at or before ``at`` (what a replay of an order
    placed at ``at`` starts from)."""
    keys = await store.list(f"{PREFIX}/{tenant_id}/{vault_id}/")
    limit = at.astimezone(UTC).strftime(_STAMP)
    # the stamp leads the file name, so the key order is the time order
    before = [k for k in keys if k.rsplit("/", 1)[1][:len(limit)] <= limit]
    for key in sorted(before, reverse=True):
        snap = await read_snapshot(store, key)
        # a scheduled one is keyed by its interval's start but read when it was taken
        if snap.as_of <= at:
            return snap
    raise ObjectNotFound(f"{PREFIX}/{tenant_id}/{vault_id}/ (none at or before {limit})")
