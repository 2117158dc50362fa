"""``vanta replay export MO_ID`` and ``vanta replay verify BUNDLE``.

``export`` writes the order's signed bundle to the object store (immutable,
content-addressed key) and to ``--out``. ``verify`` runs offline: it reads only the file
(and ``--public-key``), never the database or the secret store. Exit codes: 0 done or
verified, 1 refused or failed verification, 2 bad input.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vanta.application.ports.objectstore import ObjectStoreError
from vanta.application.public_keys import PublicKeyUnreadable, parse_public_key
from vanta.application.replay_bundle import Bundle, build_bundle, store_bundle
from vanta.application.replay_verify import verify_bundle
from vanta.bootstrap.signing import build_verifier
from vanta.config import Settings
from vanta.domain.errors import DomainError
from vanta.entrypoints.code_version import code_version

replay_app = typer.Typer(help="Signed replay bundles of manager orders.", no_args_is_help=True)
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]


async def _export(s: Settings, tenant: str, mo_id: str) -> tuple[Bundle, Any]:
    from vanta.bootstrap import build
    from vanta.bootstrap.stores import build_object_store
    c = build(s)
    store = build_object_store(s)
    try:
        await c.migrate()
        assert c.signer is not None
        bundle = await build_bundle(c.uow(readonly=True), tenant, mo_id, signer=c.signer,
                                    code_version=code_version())
        return bundle, await store_bundle(store, bundle)
    finally:
        close: Any = getattr(store, "close", None)
        if close is not None:
            await close()
        await c.close()


@replay_app.command("export")
def export_command(
    mo_id: Annotated[str, typer.Argument(help="the manager order's id (mo_id)")],
    tenant: Annotated[str, typer.Option(help="the order's tenant")],
    out: Annotated[Path | None, typer.Option(help="also write the bundle to this file")] = None,
    data_dir: DataDir = None,
) -> None:
    """Build the order's signed replay bundle and store it under an immutable key."""
    s = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        bundle, ref = asyncio.run(_export(s, tenant, mo_id))
    except DomainError as e:
        console.print(f"[red]refused ({e.code}): {e.message}[/red]")
        raise typer.Exit(1) from None
    except ObjectStoreError as e:
        console.print(f"[red]object store: {e}[/red]")
        raise typer.Exit(1) from None
    if out is not None:
        out.write_bytes(bundle.data)
    state = "written" if ref.created else "unchanged (already stored)"
    console.print(f"{ref.key}  {ref.size} bytes  sha256 {ref.sha256[:16]}…  {state}",
                  soft_wrap=True)
    if out is not None:
        console.print(f"saved to {out}")


@replay_app.command("verify")
def verify_command(
    bundle: Annotated[Path, typer.Argument(help="the bundle file (.tar)")],
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="the key to trust: /.well-known/vanta-replay-keys.json saved "
        "to a file, or the key in base64")] = None,
) -> None:
    """Check a bundle offline: signature, files, audit hashes, every child recomputed, and
    every cross-rail child routed again (its decision and planned legs)."""
    try:
        data = bundle.read_bytes()
        pinned = parse_public_key(public_key.read_bytes()) if public_key else None
    except (OSError, PublicKeyUnreadable) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    report = verify_bundle(data, build_verifier(), pinned)
    for note in report.notes:
        console.print(f"  {note}", soft_wrap=True)
    if report.ok:
        console.print(f"bundle verified: order {report.mo_id}, {report.children} children")
        return
    console.print(f"[red]bundle does not verify[/red] ({len(report.problems)} problem(s)):")
    for p in report.problems:
        console.print(f"  - {p}", soft_wrap=True)
    raise typer.Exit(1)
