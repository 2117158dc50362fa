"""A small world for authorization tests: two vaults of one tenant (followers, orders, a sync
order, dead letters in each) and a second tenant, every object with a distinct, greppable id,
and the tokens whose view of it the tests check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api.conftest import Api
from vanta.application.clock import utcnow
from vanta.application.principal import ROLE_SCOPES
from vanta.application.seed import create_vault

CORE, SIDE, BEE = "vlt-core-KQ3", "vlt-side-ZP8", "vlt-bee-W4X"


@dataclass
class Obj:
    kind: str  # vault, follower, mo, fo
    id: str
    tenant: str
    vault: str
    follower: str | None = None  # the follower a follower-order or sync order is for
    words: tuple[str, ...] = ()  # other greppable strings that belong to it (labels, urls)


@dataclass
class World:
    objs: list[Obj] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # short name -> id

    def add(self, name: str, obj: Obj) -> Obj:
        self.objs.append(obj)
        self.names[name] = obj.id
        return obj

    def __getitem__(self, name: str) -> str:
        return self.names[name]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objs if o.kind == kind]


@dataclass(frozen=True)
class Who:
    """A token and what it may see: its tenant, its vaults (None: all), its follower."""

    name: str
    role: str
    tenant: str = "tnt_a"
    vaults: frozenset[str] | None = None
    follower: str | None = None  # a short name in the World

    def scopes(self) -> frozenset[str]:
        return ROLE_SCOPES[self.role]

    def sees(self, o: Obj, world: World) -> bool:
        if o.tenant != self.tenant:
            return False
        if self.vaults is not None and o.vault not in self.vaults:
            return False
        if self.follower is None:
            return True
        mine = world[self.follower]
        own_vault = next(x.vault for x in world.objs if x.id == mine)
        if o.vault != own_vault:
            return False
        if o.kind == "follower":
            return o.id == mine
        return o.follower is None or o.follower == mine

    def token(self, api: Api, world: World) -> str:
        return api.container.issuer.issue(
            f"{self.name}-user", self.tenant, sorted(self.scopes()), roles=[self.role],
            follower_id=None if self.follower is None else world[self.follower],
            vault_ids=None if self.vaults is None else sorted(self.vaults))


WHO = [
    Who("owner", "owner"),
    Who("ops", "ops"),
    Who("auditor", "auditor"),
    Who("follower", "follower", follower="core1"),
    Who("other-tenant-owner", "owner", tenant="tnt_b"),
    Who("owner-narrowed-to-side", "owner", vaults=frozenset({SIDE})),
    Who("other-follower", "follower", follower="core2"),
]


async def _follower(api: Api, w: World, tenant: str, vault: str, name: str,
                    sync: bool = False) -> str:
    body: dict[str, Any] = {"label": f"label-{name}-Q7",
                            "webhook": {"url": f"https://{name}-hook.example/h"}}
    if sync:
        body["sync"] = True
    r = await api.client.post(f"/v1/vaults/{vault}/followers", headers=api.auth(tenant),
                              json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    w.add(name, Obj("follower", out["follower_id"], tenant, vault,
                    words=(f"label-{name}-Q7", f"{name}-hook.example")))
    for c in out.get("sync_orders", []):
        w.add(f"sync-{name}", Obj("mo", c["mo_id"], tenant, vault, follower=out["follower_id"],
                                  words=(f"sync:{out['follower_id']}",)))
        w.add(f"sync-fo-{name}", Obj("fo", c["fo_id"], tenant, vault,
                                     follower=out["follower_id"]))
    return str(out["follower_id"])


async def _order(api: Api, w: World, tenant: str, vault: str, name: str) -> dict[str, Any]:
    r = await api.client.post("/v1/manager-orders", headers=api.auth(tenant), json={
        "id": f"ORD-{name}", "vault_id": vault, "symbol": "AAPL", "side": "buy", "qty": 10,
        "ref_price": "100"})
    assert r.status_code == 201, r.text
    out = r.json()
    w.add(name, Obj("mo", out["mo_id"], tenant, vault, words=(f"ORD-{name}",)))
    by_follower = {o.id: n for n, i in w.names.items() for o in w.objs
                   if o.id == i and o.kind == "follower"}
    kids = await api.client.get(out["links"]["children"], headers=api.auth(tenant))
    for c in kids.json()["data"]:
        w.add(f"{name}-{by_follower[c['follower_id']]}",
              Obj("fo", c["fo_id"], tenant, vault, follower=c["follower_id"]))
    return out


async def _dead_letter(api: Api, fo_id: str) -> None:
    async with api.container.uow() as uow:
        assert await uow.child_orders.update(fo_id, expect_state="pending", state="dlq",
                                             dead_lettered_at=utcnow(), updated_at=utcnow())
        await uow.commit()


async def build_world(api: Api) -> World:
    """Orders come in two rounds so the second round's snapshots hold every follower's
    position from the first; a late follower joins with sync (an order for it alone)."""
    w = World()
    for t, v in (("tnt_a", CORE), ("tnt_a", SIDE), ("tnt_b", BEE)):
        await create_vault(api.container.uow(), tenant_id=t, vault_id=v, label=f"label-{v}")
        w.add(v, Obj("vault", v, t, v, words=(f"label-{v}",)))
    await _follower(api, w, "tnt_a", CORE, "core1")
    await _follower(api, w, "tnt_a", CORE, "core2")
    await _follower(api, w, "tnt_a", SIDE, "side1")
    await _follower(api, w, "tnt_b", BEE, "bee1")
    for rnd in (1, 2):
        await _order(api, w, "tnt_a", CORE, f"core-{rnd}")
        await _order(api, w, "tnt_a", SIDE, f"side-{rnd}")
        await _order(api, w, "tnt_b", BEE, f"bee-{rnd}")
    await _follower(api, w, "tnt_a", CORE, "core3", sync=True)
    assert "sync-core3" in w.names, "the late follower got a sync order"
    for name in ("core-1-core1", "core-1-core2", "side-1-side1", "bee-1-bee1"):
        await _dead_letter(api, w[name])
    return w


def forbidden_words(who: Who, w: World) -> set[str]:
    """Every id and greppable word of the objects ``who`` may not see."""
    out: set[str] = set()
    for o in w.objs:
        if not who.sees(o, w):
            out.add(o.id)
            out.update(o.words)
    return out
