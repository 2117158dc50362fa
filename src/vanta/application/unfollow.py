"""Unfollowing: a follower leaves its vault, closing or keeping its positions.

The follower row stays (its children, attempts and audit are history) and is marked with
``paused_reason = "unfollowed"``: expansions skip it from then on, so it gets no new
children. With ``close``, ``paused`` itself is cleared, because the dispatcher withdraws
queued children of a paused follower, and the exit children must go out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from vanta.application.clock import Clock, utcnow
from vanta.application.followers import UNFOLLOWED
from vanta.application.manager_orders import _expand_and_store
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.errors import Conflict, NotFound
from vanta.domain.followers import FollowerSpec, Protections
from vanta.domain.ids import VaultId, manager_order_id
from vanta.domain.mirroring import Expansion, ensure_vault_accepts_orders
from vanta.domain.orders import ManagerOrder, Side, TimeInForce

HISTORY_LIMIT = 1_000_000  # children read to learn which symbols the follower ever traded


class PositionChoice(StrEnum):
    CLOSE = "close"
    KEEP = "keep"


@dataclass(frozen=True)
class Unfollowed:
    follower: FollowerRecord
    exits: tuple[Expansion, ...]
    already: bool  # True: it had unfollowed before; nothing was written


def exit_order_id(follower_id: str, symbol: str) -> str:
    # "sync:" ids are reserved (clients cannot send them) and sync orders stay out of the
    # manager's own holdings; one id per follower and symbol makes the exit exactly-once
    return f"sync:exit:{follower_id}:{symbol}"


def _for_exit(spec: FollowerSpec) -> FollowerSpec:
    """The exit closes what is held under the symbol held: no pause (cleared at once) and no
    symbol rules, which were applied when the position was opened."""
    return dataclasses.replace(spec, paused=False, protections=Protections())


async def _held(uow: UnitOfWork, tenant_id: str,
                follower: FollowerRecord) -> dict[str, tuple[Decimal, str]]:
    """symbol -> (long quantity, venue) of the follower's open positions."""
    children = await uow.child_orders.list(tenant_id, follower_id=follower.follower_id,
                                           mo_id=None, since=None, limit=HISTORY_LIMIT)
    venues = {c.symbol: c.venue for c in sorted(children, key=lambda c: c.created_at)}
    net = await uow.child_orders.positions([follower.follower_id], venues)
    return {sym: (qty, venues[sym]) for (_, sym), qty in net.items() if qty > 0}


async def unfollow(
    uow: UnitOfWork, *, tenant_id: str, follower_id: str, positions: PositionChoice,
    actor: str, clock: Clock = utcnow,
) -> Unfollowed:
    """Everything in one transaction: the exit orders and children (``close``), the mark and
    the audit event. A second call changes nothing and says so."""
    async with uow:
        follower = await uow.followers.get(tenant_id, follower_id)
        if follower is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        vault = await uow.vaults.get_for_update(tenant_id, follower.vault_id)
        # read again under the vault's lock: of two concurrent calls, the second sees the first
        follower = await uow.followers.get(tenant_id, follower_id)
        if vault is None or follower is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        if follower.paused_reason == UNFOLLOWED:
            return Unfollowed(follower, (), True)
        now = clock()
        exits: list[Expansion] = []
        if positions is PositionChoice.CLOSE:
            if follower.kill_switch:
                # the dispatcher would withdraw the exits at once: say so instead
                raise Conflict("the follower's kill switch is on: lift it to close its "
                               "positions, or keep them", code="kill_switch_on")
            held = await _held(uow, tenant_id, follower)
            if held:
                ensure_vault_accepts_orders(vault.maintenance)
            prices = await uow.manager_orders.holdings(follower.vault_id)
            for symbol, (qty, venue) in sorted(held.items()):
                coid = exit_order_id(follower_id, symbol)
                order = ManagerOrder(
                    mo_id=manager_order_id(follower.vault_id, coid),
                    vault_id=VaultId(follower.vault_id), client_order_id=coid, symbol=symbol,
                    venue=venue, side=Side.SELL, qty=qty, tif=TimeInForce.DAY,
                    ref_price=prices[symbol][2] if symbol in prices else None,
                    closes_position=True, meta={"sync_for": follower_id, "unfollow": True})
                if await uow.manager_orders.get(tenant_id, order.mo_id) is not None:
                    continue
                exits.append(await _expand_and_store(
                    uow, tenant_id=tenant_id, order=order, source="sync", actor=actor,
                    now=now, only=lambda s: s.follower_id == follower_id, adjust=_for_exit))
        # closing unpauses (a paused follower's queued children, the exits too, would be
        # withdrawn); keeping leaves the pause as it was
        paused = False if positions is PositionChoice.CLOSE else follower.paused
        await uow.followers.update(tenant_id, follower_id, paused=paused,
                                   paused_reason=UNFOLLOWED, updated_at=now)
        await uow.audit.append(
            entity="follower", entity_id=follower_id, action="unfollowed", actor=actor,
            tenant_id=tenant_id,
            payload={"vault_id": follower.vault_id, "positions": positions.value,
                     "exit_orders": [e.children[0].mo_id for e in exits if e.children],
                     "before": {"paused": follower.paused,
                                "paused_reason": follower.paused_reason}})
        after = await uow.followers.get(tenant_id, follower_id)
        await uow.commit()
    assert after is not None
    return Unfollowed(after, tuple(exits), False)
