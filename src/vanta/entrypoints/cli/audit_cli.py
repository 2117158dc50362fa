"""``vanta audit-verify`` and ``vanta audit anchor``: the audit chain against its recorded
head and its newest signed anchor in the object store. Exit codes: 0 intact (or anchored),
1 broken or refused, 2 bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vanta.application.audit_anchor import AnchorResult, AuditAnchoring, AuditReport
from vanta.application.ports.objectstore import ObjectStoreError
from vanta.application.public_keys import PublicKeyUnreadable, parse_public_key
from vanta.bootstrap import build
from vanta.bootstrap.signing import build_verifier
from vanta.bootstrap.stores import build_object_store
from vanta.config import Settings
from vanta.domain.errors import DomainError

audit_app = typer.Typer(help="The audit chain's signed anchors.", no_args_is_help=True)
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]
PublicKey = Annotated[Path | None, typer.Option(
    "--public-key", help="check anchors with this key (a keys document from "
    "/.well-known/vanta-replay-keys.json, or base64) instead of the platform's own")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


async def _with(s: Settings, work: Any) -> Any:
    c = build(s)
    store = build_object_store(s)
    try:
        await c.migrate()
        assert c.signer is not None
        return await work(AuditAnchoring(c.uow, store, c.signer, build_verifier()))
    finally:
        close: Any = getattr(store, "close", None)
        if close is not None:
            await close()
        await c.close()


def verify_command(data_dir: DataDir = None, public_key: PublicKey = None) -> None:
    """Check the audit hash chain end to end, against its recorded head and newest anchor."""
    try:
        pinned = parse_public_key(public_key.read_bytes()) if public_key else None
    except (OSError, PublicKeyUnreadable) as e:
        console.print(f"[red]--public-key: {e}[/red]")
        raise typer.Exit(2) from None
    try:
        report: AuditReport = asyncio.run(_with(_settings(data_dir),
                                                lambda a: a.verify(pinned)))
    except ObjectStoreError as e:
        console.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None
    v = report.verdict
    if v.anchor is None and report.anchor_problem is None:
        used = "no anchor yet (`vanta audit anchor` writes one)"
    elif v.anchor is not None:
        used = (f"checked against anchor {v.anchor.key} (event #{v.anchor.seq}, anchored "
                f"{v.anchor.anchored_at}, key {v.anchor.key_id})")
    else:
        used = f"newest anchor unusable: {report.anchor_problem}"
    if report.ok:
        console.print(f"audit chain intact: {v.count} events, the recorded head matches; "
                      f"{used}", soft_wrap=True)
        return
    where = f" at event #{v.bad_seq}" if v.bad_seq is not None else ""
    console.print(f"[red]audit chain broken{where}[/red] ({v.count} events); {used}",
                  soft_wrap=True)
    for p in v.problems:
        console.print(f"  - {p}", soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("anchor")
def anchor_command(data_dir: DataDir = None) -> None:
    """Sign the chain's head (seq and hash) into the object store under an immutable key."""
    try:
        res: AnchorResult | None = asyncio.run(_with(_settings(data_dir),
                                                     lambda a: a.anchor()))
    except DomainError as e:
        console.print(f"[red]refused ({e.code}): {e.message}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    except ObjectStoreError as e:
        console.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None
    if res is None:
        console.print("the audit chain is empty: nothing to anchor")
    elif res.created:
        console.print(f"anchored event #{res.anchor.seq} (hash {res.anchor.hash[:16]}…) at "
                      f"{res.anchor.key}, key {res.anchor.key_id}")
    else:
        console.print(f"unchanged: {res.anchor.key} already anchors the head "
                      f"(event #{res.anchor.seq})")
