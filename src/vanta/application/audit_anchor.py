"""Anchoring the audit chain outside the database, and verifying the chain against it.

``anchor()`` checks the run of the chain since the newest anchor (linked, hashed, ending at
the recorded head), then signs "event #N has hash H" and writes it to the object store under
an immutable key (``audit/anchors/<seq>.json``). The scheduler does this periodically
(``audit_anchor_interval_seconds``), ``vanta audit anchor`` on demand. ``verify()`` checks the
whole chain, the recorded head row and the newest anchor (its signature with the platform's
public key, or one the auditor pins), and names the anchor it used.

What an anchor cannot see: events appended after it and then removed (with the head row
altered to match) before the next anchor. The interval bounds that window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vanta.application.ports.clock import Clock, iso, utcnow
from vanta.application.ports.objectstore import ObjectExists, ObjectStore
from vanta.application.ports.signing import SignatureVerifier, Signer, key_id_of
from vanta.application.ports.uow import UowFactory
from vanta.domain.audit import GENESIS_HASH, AuditEvent, first_problem
from vanta.domain.audit_anchor import (
    ANCHOR_PREFIX,
    Anchor,
    AnchorInvalid,
    ChainVerdict,
    anchor_document,
    judge_chain,
    parse_anchor_document,
)
from vanta.domain.audit_batch import BATCH_ACTION, batches_problems
from vanta.domain.errors import DomainError

__all__ = ["AnchorRefused", "AnchorResult", "AuditAnchoring", "AuditReport"]

JSON = "application/json"


class AnchorRefused(DomainError):
    """The chain does not verify (or contradicts an anchor): nothing is signed."""

    code = "audit_chain_broken"


@dataclass(frozen=True)
class AnchorResult:
    anchor: Anchor
    created: bool  # False: the head had not moved since the newest anchor


@dataclass(frozen=True)
class AuditReport:
    verdict: ChainVerdict
    anchor_problem: str | None = None  # the newest anchor could not be used, and why

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.anchor_problem is None


class AuditAnchoring:
    def __init__(self, uow_factory: UowFactory, store: ObjectStore, signer: Signer,
                 verifier: SignatureVerifier, *, clock: Clock = utcnow) -> None:
        self._uow, self._store = uow_factory, store
        self._signer, self._verifier, self._clock = signer, verifier, clock

    async def _read(self, key: str, public_key: bytes) -> Anchor:
        anchor, signature = parse_anchor_document(await self._store.get(key))
        if anchor.key != key:
            raise AnchorInvalid(f"anchor {key} names event #{anchor.seq} (a copied anchor)")
        if not self._verifier.verify(public_key, anchor.statement(), signature):
            raise AnchorInvalid(f"anchor {key}: the signature does not verify with key "
                                f"{key_id_of(public_key)}")
        return anchor

    async def latest(self, public_key: bytes | None = None) -> Anchor | None:
        """The newest anchor, its signature checked; AnchorInvalid when it does not verify."""
        keys = [k for k in await self._store.list(ANCHOR_PREFIX) if k.endswith(".json")]
        if not keys:
            return None
        return await self._read(keys[-1], public_key or self._signer.public_key())

    async def anchor(self) -> AnchorResult | None:
        """Sign the current head into the store; None while the chain is empty."""
        try:
            latest = await self.latest()
        except AnchorInvalid as e:
            raise AnchorRefused(str(e)) from None
        async with self._uow() as uow:
            # head first: under read committed, events appended after it may show in the
            # read that follows; they are left for the next anchor
            head = await uow.audit.head()
            run = await uow.audit.since(latest.seq if latest else 1)
            leaves = await uow.audit.leaves_of([e.event_id for e in run
                                                if e.action == BATCH_ACTION])
        if head is None or head[0] == 0:
            return None
        run = [e for e in run if e.seq <= head[0]]
        problem = _check_run(run, latest, head)
        broken = batches_problems(run, leaves)
        if problem is None and broken:
            problem = broken[0][1]
        if problem is not None:
            raise AnchorRefused(f"not anchored: {problem}")
        if latest is not None and latest.seq == head[0]:
            return AnchorResult(latest, False)
        new = Anchor(head[0], head[1], iso(self._clock()), self._signer.key_id)
        doc = anchor_document(new, self._signer.sign(new.statement()))
        try:
            await self._store.put(new.key, doc, content_type=JSON,
                                  metadata={"kind": "audit-anchor"})
        except ObjectExists:
            # another anchorer signed this head first; it must record the same hash
            other, _ = parse_anchor_document(await self._store.get(new.key))
            if other.hash != new.hash:
                raise AnchorRefused(f"{new.key} records another hash for event #{new.seq}: "
                                    "the history was rewritten") from None
            return AnchorResult(other, False)
        return AnchorResult(new, True)

    async def verify(self, public_key: bytes | None = None) -> AuditReport:
        anchor_problem = None
        try:
            latest = await self.latest(public_key)
        except AnchorInvalid as e:
            latest, anchor_problem = None, str(e)
        async with self._uow() as uow:
            head = await uow.audit.head()
            events = await uow.audit.all()
            if head is not None and events and events[-1].seq > head[0]:
                head = await uow.audit.head()  # an append committed between the two reads
            leaves = await uow.audit.all_leaves()
        return AuditReport(judge_chain(events, head=head, anchor=latest, leaves=leaves),
                           anchor_problem)


def _check_run(run: Sequence[AuditEvent], latest: Anchor | None,
               head: tuple[int, str]) -> str | None:
    prev, first = GENESIS_HASH, 1
    if latest is not None:
        if not run or run[0].seq != latest.seq or run[0].hash != latest.hash:
            return (f"event #{latest.seq} no longer has the hash anchor {latest.key} "
                    "recorded: the history was rewritten or cut")
        prev, first, run = latest.hash, latest.seq + 1, run[1:]
    found = first_problem(run, prev_hash=prev, first_seq=first)
    if found is not None:
        return found[1]
    last = (run[-1].seq, run[-1].hash) if run else (latest.seq, latest.hash) if latest \
        else (0, GENESIS_HASH)
    if last != head:
        return (f"the chain ends at event #{last[0]} but the recorded head is "
                f"#{head[0]}")
    return None
