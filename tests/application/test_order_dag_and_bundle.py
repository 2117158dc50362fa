"""The order DAG service and replay bundles over the fakes: what a DAG links, how a
caller's follower and vault narrowing apply, children in keyset pages, another tenant's
order, and a bundle that verifies (fake signer) until a byte of it changes."""

from __future__ import annotations

import pytest

from tests.application.conftest import World
from tests.fakes.sender import Answer
from tests.fakes.signing import FakeSigner, FakeVerifier
from vanta.application.dag import order_dag
from vanta.application.replay_bundle import build_bundle
from vanta.application.replay_verify import verify_bundle
from vanta.domain.errors import NotFound
from vanta.domain.ids import dag_id_for
from vanta.domain.replay_bundle import CHILDREN, pack, unpack


async def test_the_dag_of_a_delivered_order(world: World) -> None:
    f1, f2 = await world.follower(), await world.follower(scale="2")
    # the first follower's endpoint fails once, then answers
    world.sender.script("https://hooks.example/0", Answer(500), Answer(200))
    mo_id = (await world.submit()).order.mo_id
    await world.drain()
    world.clock.advance(seconds=2)
    await world.drain()
    whole = await order_dag(world.uow(), "tnt_a", mo_id)
    dag = whole.dag
    assert (whole.children, whole.next_after) == (2, None)
    assert dag.dag_id == dag_id_for(mo_id)
    kinds = [n.kind for n in dag.nodes]
    assert kinds.count("child_order") == 2 and kinds.count("manager_order") == 1
    attempts = [e for e in dag.edges if e.kind == "attempted"]
    assert len(attempts) == 3 and {e.state for e in attempts} == {"retry", "ack"}
    ids = {n.id for n in dag.nodes}
    assert all(e.source in ids and e.target in ids for e in dag.edges)
    only = (await order_dag(world.uow(), "tnt_a", mo_id, follower_id=f1)).dag
    children = [n for n in only.nodes if n.kind == "child_order"]
    assert [n.attrs["follower_id"] for n in children] == [f1]
    assert f2 not in str(only.to_json())
    with pytest.raises(NotFound):
        await order_dag(world.uow(), "tnt_b", mo_id)


async def test_children_come_in_keyset_pages_each_a_whole_graph(world: World) -> None:
    for _ in range(3):
        await world.follower()
    s = await world.submit(id="o1")
    assert s.expansion is not None
    mo_id = s.order.mo_id
    # page order: (created_at, fo_id), one created_at for all
    fos = sorted(c.fo_id for c in s.expansion.children)
    async with world.uow() as u:
        await u.attempts.add_many([{
            "fo_id": fos[0], "attempt_no": 1, "started_at": world.clock.now,
            "status_code": 200, "latency_ms": 5, "response_excerpt": None, "error": None,
            "outcome": "ack"}])
        await u.commit()
    first = await order_dag(world.uow(), "tnt_a", mo_id, limit=2)
    assert first.children == 2 and first.next_after is not None
    assert first.next_after[1] == fos[1]
    rest = await order_dag(world.uow(), "tnt_a", mo_id, limit=2, after=first.next_after)
    assert (rest.children, rest.next_after) == (1, None)
    pages = [first.dag, rest.dag]
    drawn = [n.id for d in pages for n in d.nodes if n.kind == "child_order"]
    assert drawn == [f"fo:{fo}" for fo in fos]  # every child once, in page order
    for d in pages:  # each page: the order, its received event, edges that resolve
        ids = {n.id for n in d.nodes}
        assert d.nodes[0].id == f"mo:{mo_id}" and d.dag_id == dag_id_for(mo_id)
        assert any(e.source == f"mo:{mo_id}" and e.kind == "audited" for e in d.edges)
        assert all(e.source in ids and e.target in ids for e in d.edges)
    edges = {(e.source, e.kind, e.target) for e in first.dag.edges}
    assert (f"fo:{fos[0]}", "attempted", f"attempt:{fos[0]}:1") in edges
    assert not any(e.kind == "attempted" for e in rest.dag.edges)  # only its own rows
    mine = s.expansion.children[1]
    narrowed = await order_dag(world.uow(), "tnt_a", mo_id, limit=2,
                               follower_id=mine.follower_id)
    assert [n.attrs["follower_id"] for n in narrowed.dag.nodes
            if n.kind == "child_order"] == [mine.follower_id]
    assert narrowed.next_after is None
    other_vault = await order_dag(world.uow(), "tnt_a", mo_id, vault_ids=["VX"])
    assert other_vault.children == 0 and len(other_vault.dag.edges) >= 1  # its events


async def test_a_bundle_over_the_fakes_verifies_until_a_byte_changes(world: World) -> None:
    await world.follower()
    await world.follower(scale="3")
    mo_id = (await world.submit(qty="7")).order.mo_id
    signer = FakeSigner(b"s" * 32)
    bundle = await build_bundle(world.uow(), "tnt_a", mo_id, signer=signer,
                                code_version={"version": "test"})
    again = await build_bundle(world.uow(), "tnt_a", mo_id, signer=signer,
                               code_version={"version": "test"})
    assert bundle.data == again.data and bundle.key == again.key
    report = verify_bundle(bundle.data, FakeVerifier(), signer.public_key())
    assert report.ok and report.children == 2, report.problems
    files = unpack(bundle.data)
    files[CHILDREN] = files[CHILDREN].replace(b'"qty":"', b'"qty":"9', 1)
    broken = verify_bundle(pack(files), FakeVerifier(), signer.public_key())
    assert any(p.startswith(f"{CHILDREN} was altered") for p in broken.problems)
    assert any(p.startswith("recomputed children differ") for p in broken.problems)
    with pytest.raises(NotFound):
        await build_bundle(world.uow(), "tnt_b", mo_id, signer=signer, code_version={})
