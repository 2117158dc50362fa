"""``vanta studio VAULT``: a Replay Studio run from the command line, with a progress bar and
a side-by-side table. The same use case, validation, plan check, stored run and audit event
as ``POST /v1/replay-studio/runs``; the operator is the actor."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vanta.application.studio import (
    StudioResult,
    Window,
    config_from_text,
    parse_request,
    run_studio,
    studio_limits,
)
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.domain.errors import DomainError, ValidationFailed
from vanta.entrypoints.cli.ops_cli import Actor, DataDir, Tenant, _refused, default_actor
from vanta.entrypoints.cli.progress import Report, progress_bar

console = Console()


async def _run(s: Settings, tenant_id: str, vault_id: str, raw: dict[str, Any], actor: str,
               report: Report) -> StudioResult:
    c = build(s)
    await c.migrate()
    try:
        limits = await studio_limits(c.uow(readonly=True), tenant_id)
        return await run_studio(c.uow(), tenant_id=tenant_id, req=parse_request(**raw),
                                limits=limits, actor=actor, progress=report)
    finally:
        await c.close()


def _table(doc: dict[str, Any]) -> Table:
    t = Table(title=f"Replay Studio: {doc['orders']} orders, sha256 {doc['sha256'][:16]}…")
    for col in ("configuration", "final NAV", "PnL", "fees", "PnL after fees", "max DD %",
                "children", "skipped"):
        t.add_column(col, justify="left" if col in ("configuration", "skipped") else "right")
    rows = list(doc["summary"]) + ([doc["actual"]] if doc.get("actual") else [])
    for r in rows:
        skipped = ", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "-"
        t.add_row(r["label"], r["final_nav"], r["pnl"], r["fees"], r["pnl_after_fees"],
                  r["max_drawdown_pct"], str(r["children"]), skipped)
    return t


def studio(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    scale: Annotated[str, typer.Option(help="the first configuration's scale")] = "1",
    compare: Annotated[list[str] | None, typer.Option(
        help="another configuration (repeatable, up to 7): 0.5, key=value,… or JSON")] = None,
    start: Annotated[datetime | None, typer.Option("--from", help="first order time (UTC)")]
    = None,
    end: Annotated[datetime | None, typer.Option("--to", help="last order time (UTC)")] = None,
    last: Annotated[int | None, typer.Option(help="the last N orders instead of a window")]
    = None,
    nav: Annotated[str, typer.Option(help="starting NAV of the simulated follower")] = "100000",
    fee_rate: Annotated[str, typer.Option(help="the first configuration's fee rate")] = "0",
    follower: Annotated[str | None, typer.Option(
        help="a follower of the vault to show beside the simulation")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the whole answer "
                                                  "here")] = None,
    tenant: Tenant = "tnt_demo", actor: Actor = None, data_dir: DataDir = None,
) -> None:
    """Replay a vault's recorded orders under follower configurations of your own."""
    configs = [{"label": f"scale {scale}", "scale": scale, "fees": {"rate": fee_rate}}]
    try:
        configs += [config_from_text(c) for c in compare or ()]
        window = Window(_utc(start), _utc(end), last)
        raw = {"vault_id": vault_id, "window": window, "starting_nav": _dec(nav),
               "configs": configs, "follower_id": follower}
        with progress_bar(console, f"replaying {vault_id}") as report:
            result = asyncio.run(_run(Settings(data_dir=data_dir) if data_dir else Settings(),
                                      tenant, vault_id, raw, actor or default_actor(),
                                      report))
    except DomainError as e:
        raise _refused(e) from None
    doc = result.document
    console.print(_table(doc))
    console.print(f"run {result.run_id} · engine {doc['engine_version']}")
    if json_out is not None:
        json_out.write_text(json.dumps(doc, indent=1))


def _utc(d: datetime | None) -> datetime | None:
    return None if d is None or d.tzinfo is not None else d.replace(tzinfo=UTC)


def _dec(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValidationFailed("--nav must be a number", code="invalid_nav",
                               field="starting_nav") from None


def register(app: typer.Typer) -> None:
    app.command("studio")(studio)
