"""Anchoring the audit chain over the fakes (memory database, memory object store, fake
signer): what is signed, when nothing is written, and what verification reports."""

from __future__ import annotations

from tests.application.conftest import World
from tests.fakes.objectstore import FakeObjectStore
from tests.fakes.signing import FakeSigner, FakeVerifier
from vanta.application.audit_anchor import AnchorRefused, AuditAnchoring
from vanta.domain.audit_anchor import ANCHOR_PREFIX, anchor_key, parse_anchor_document


def _anchoring(world: World, store: FakeObjectStore,
               signer: FakeSigner | None = None) -> AuditAnchoring:
    return AuditAnchoring(world.db.uow, store, signer or FakeSigner(b"k" * 32), FakeVerifier(),
                          clock=world.clock)


async def _note(world: World, n: int = 1) -> None:
    async with world.db.uow() as uow:
        for i in range(n):
            await uow.audit.append(entity="vault", entity_id="VA", action="noted",
                                   actor="test", payload={"i": i}, tenant_id="tnt_a")
        await uow.commit()


async def test_the_head_is_signed_under_a_key_named_by_its_seq(world: World) -> None:
    store = FakeObjectStore()
    anchoring = _anchoring(world, store)
    res = await anchoring.anchor()
    assert res is not None and res.created
    async with world.db.uow() as uow:
        head = await uow.audit.head()
    assert head is not None and (res.anchor.seq, res.anchor.hash) == head
    assert await store.list(ANCHOR_PREFIX) == [anchor_key(head[0])]
    anchor, sig = parse_anchor_document(await store.get(anchor_key(head[0])))
    assert anchor == res.anchor
    assert FakeVerifier().verify(b"k" * 32, anchor.statement(), sig)
    again = await anchoring.anchor()
    assert again is not None and not again.created
    assert len(await store.list(ANCHOR_PREFIX)) == 1
    await _note(world, 2)
    moved = await anchoring.anchor()
    assert moved is not None and moved.created and moved.anchor.seq == head[0] + 2
    report = await anchoring.verify()
    assert report.ok and report.verdict.anchor == moved.anchor


async def test_a_chain_that_does_not_verify_is_never_anchored(world: World) -> None:
    store = FakeObjectStore()
    anchoring = _anchoring(world, store)
    await anchoring.anchor()
    await _note(world, 2)
    # the head row moves past the events (as if the last event had been deleted)
    async with world.db.uow() as uow:
        seq, h = await uow.audit.head() or (0, "")
    world.db.store.tables["audit_chain_head"][(1,)] = {"id": 1, "seq": seq + 1, "hash": h}
    try:
        await anchoring.anchor()
        raise AssertionError("anchored a broken chain")
    except AnchorRefused as e:
        assert "recorded head" in str(e)
    assert len(await store.list(ANCHOR_PREFIX)) == 1
    report = await anchoring.verify()
    assert not report.ok and any("recorded head" in p for p in report.verdict.problems)


async def test_an_anchor_from_another_key_is_reported_not_used(world: World) -> None:
    store = FakeObjectStore()
    await _anchoring(world, store, FakeSigner(b"x" * 32)).anchor()
    report = await _anchoring(world, store).verify()
    assert not report.ok and report.verdict.anchor is None
    assert report.anchor_problem is not None and "does not verify" in report.anchor_problem
