"""Audit hash versions: version 2 covers the tenant and the version; version 1 events still
verify; a chain never steps down from version 2 to 1."""

from __future__ import annotations

import dataclasses

from vanta.domain.audit import GENESIS_HASH, chain_event, first_problem, hash_of, verify_chain
from vanta.domain.ids import dag_id_for


def _chain(versions: list[int], tenant: str = "tnt_a") -> list:  # type: ignore[type-arg]
    out, prev = [], GENESIS_HASH
    for i, v in enumerate(versions, start=1):
        e = chain_event(prev_hash=prev, seq=i, event_id=f"e{i}", entity="vault", entity_id="V",
                        action="noted", actor="t", payload={"i": i}, ts="2026-01-01T00:00:00Z",
                        tenant_id=tenant, hash_v=v)
        out.append(e)
        prev = e.hash
    return out


def test_version_2_covers_the_tenant_and_version_1_does_not() -> None:
    old, new = _chain([1])[0], _chain([2])[0]
    assert hash_of(dataclasses.replace(old, tenant_id="tnt_b")) == old.hash
    assert hash_of(dataclasses.replace(new, tenant_id="tnt_b")) != new.hash
    assert hash_of(dataclasses.replace(new, tenant_id=None)) != new.hash


def test_old_events_verify_and_new_ones_follow_them() -> None:
    assert verify_chain(_chain([1, 1, 2, 2])) is None


def test_a_step_down_in_version_is_refused() -> None:
    events = _chain([2, 1])
    problem = first_problem(events)
    assert problem is not None and problem[0] == 2 and "never go down" in problem[1]


def test_an_unknown_version_is_refused() -> None:
    e = dataclasses.replace(_chain([2])[0], hash_v=3)
    problem = first_problem([e])
    assert problem is not None and "unknown hash version 3" in problem[1]


def test_the_dag_id_is_derived_from_the_order_id() -> None:
    assert dag_id_for("mo-1") == dag_id_for("mo-1") != dag_id_for("mo-2")
    assert dag_id_for("mo-1").startswith("dag_")
