"""Operator switches from the command line: kill switch, vault freeze, overlays.

They call the same use cases as the API's PATCH /v1/followers/{id} and
POST /v1/vaults/{id}/overlay, so validation, plan checks and audit events are identical;
the operator is the audit actor."""

from __future__ import annotations

import asyncio
import getpass
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vanta.application.followers import patch_follower
from vanta.application.overlays import apply_overlay
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.domain.errors import DomainError

console = Console()
err = Console(stderr=True, soft_wrap=True)


class Switch(StrEnum):
    ON = "on"
    OFF = "off"


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (e.g. an arbitrary container uid)
        user = "unknown"
    return f"cli:{user}"


Tenant = Annotated[str, typer.Option(help="tenant id")]
Actor = Annotated[str | None, typer.Option(help="audit actor; default cli:<os user>")]
DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


async def _kill_switch(s: Settings, tenant_id: str, follower_id: str, on: bool,
                       actor: str) -> None:
    c = build(s)
    await c.migrate()
    try:
        await patch_follower(c.uow(), tenant_id=tenant_id, follower_id=follower_id,
                             raw={"kill_switch": on}, actor=actor)
    finally:
        await c.close()


async def _overlay(s: Settings, tenant_id: str, vault_id: str, raw: dict[str, Any],
                   actor: str) -> dict[str, Any]:
    c = build(s)
    await c.migrate()
    try:
        return await apply_overlay(c.uow(), tenant_id=tenant_id, vault_id=vault_id, raw=raw,
                                   actor=actor)
    finally:
        await c.close()


def _refused(e: DomainError) -> typer.Exit:
    """One line and exit code 2: unknown ids, invalid values, plan refusals."""
    err.print(f"[red]vanta: {e.code}: {e.message}[/red]")
    return typer.Exit(2)


def kill_switch(
    follower_id: Annotated[str, typer.Argument(help="follower id")],
    state: Annotated[Switch, typer.Argument(help="on: skip this follower's next children")],
    tenant: Tenant = "tnt_demo", actor: Actor = None, data_dir: DataDir = None,
) -> None:
    """Set or clear a follower's kill switch (audited with the operator as actor)."""
    try:
        asyncio.run(_kill_switch(_settings(data_dir), tenant, follower_id,
                                 state is Switch.ON, actor or default_actor()))
    except DomainError as e:
        raise _refused(e) from None
    console.print(f"follower {follower_id}: kill switch {state.value}")


def maintenance(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    state: Annotated[Switch, typer.Argument(help="on: freeze the vault's deliveries")],
    tenant: Tenant = "tnt_demo", actor: Actor = None, data_dir: DataDir = None,
) -> None:
    """Freeze (on) or release (off) a vault: held deliveries go once it is off."""
    raw = {"maintenance": {"enabled": state is Switch.ON}}
    try:
        asyncio.run(_overlay(_settings(data_dir), tenant, vault_id, raw,
                             actor or default_actor()))
    except DomainError as e:
        raise _refused(e) from None
    console.print(f"vault {vault_id}: maintenance {state.value}")


def overlay(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    flip: Annotated[bool, typer.Option("--flip", help="flip mode (needs the plan's feature)")]
    = False,
    amplify: Annotated[str | None, typer.Option(help="flip amplification, e.g. 0.5")] = None,
    persona: Annotated[str | None, typer.Option(help="persona boost, e.g. Apollo")] = None,
    ttl_minutes: Annotated[int | None, typer.Option(help="lifetime in minutes (1-60)")] = None,
    tenant: Tenant = "tnt_demo", actor: Actor = None, data_dir: DataDir = None,
) -> None:
    """Apply a flip or persona overlay to a vault, as POST /v1/vaults/{id}/overlay does."""
    raw = overlay_request(flip=flip, amplify=amplify, persona=persona, ttl_minutes=ttl_minutes)
    try:
        result = asyncio.run(_overlay(_settings(data_dir), tenant, vault_id, raw,
                                      actor or default_actor()))
    except DomainError as e:
        raise _refused(e) from None
    print(json.dumps(result))


def overlay_request(*, flip: bool, amplify: str | None, persona: str | None,
                    ttl_minutes: int | None) -> dict[str, Any]:
    """The API's request body; the use case validates it, so the rules stay in one place."""
    raw: dict[str, Any] = {}
    if flip or amplify is not None:
        # the string as typed: the use case parses it exactly, as it does a JSON number
        raw["flip"] = {"amplify": amplify} if amplify is not None else {}
    if persona is not None:
        raw["persona"] = persona
    if ttl_minutes is not None:
        raw["ttl_minutes"] = ttl_minutes
    return raw


def register(app: typer.Typer) -> None:
    app.command("kill-switch")(kill_switch)
    app.command("maintenance")(maintenance)
    app.command("overlay")(overlay)
