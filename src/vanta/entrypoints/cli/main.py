"""The ``vanta`` command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vanta.application.principal import ALL_SCOPES, PLATFORM_SCOPES
from vanta.bootstrap import MasterKeyMissing, build, upgrade_database
from vanta.config import Settings
from vanta.entrypoints.cli import commands, event_loop
from vanta.entrypoints.cli.audit_cli import audit_app
from vanta.entrypoints.cli.audit_cli import verify_command as audit_verify_command
from vanta.entrypoints.cli.backup_cli import ops_app
from vanta.entrypoints.cli.exports_cli import exports_app
from vanta.entrypoints.cli.ops_cli import register as register_ops
from vanta.entrypoints.cli.paper_cli import paper_app
from vanta.entrypoints.cli.reconcile_cli import register as register_reconcile
from vanta.entrypoints.cli.replay_cli import replay_app
from vanta.entrypoints.cli.snapshot_cli import register as register_snapshot
from vanta.entrypoints.cli.studio_cli import register as register_studio
from vanta.entrypoints.cli.workers_cli import workers_app

app = typer.Typer(help="Vanta Platform: mirror manager orders to followers.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
dlq_app = typer.Typer(help="Dead letters (mirror_dispatch_dlx).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(exports_app, name="export")
app.add_typer(workers_app, name="worker")
app.add_typer(paper_app, name="paper")
app.add_typer(audit_app, name="audit")
app.add_typer(replay_app, name="replay")
app.add_typer(ops_app, name="ops")
app.command("audit-verify")(audit_verify_command)
register_ops(app)
register_studio(app)
register_snapshot(app)
register_reconcile(app, workers_app)
console = Console()

DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]


def settings(data_dir: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply every migration to the configured database."""
    s = settings(data_dir)
    upgrade_database(s)
    console.print(f"database at head: {s.db_url.split('@')[-1]}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port (0 picks a free one)")] = None,
    port_file: Annotated[Path | None, typer.Option(help="write the bound port here")] = None,
    dispatcher: Annotated[bool, typer.Option(help="run the dispatcher in-process")] = True,
    data_dir: DataDir = None,
) -> None:
    """Run the API (and, on the embedded profile, the dispatcher)."""
    s = settings(data_dir, api_host=host, api_port=port)
    event_loop.run(commands.serve(s, port_file=port_file, run_dispatcher=dispatcher),
                   s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    receiver_port: Annotated[int, typer.Option(help="demo receiver port")] = 8001,
    data_dir: DataDir = None,
) -> None:
    """Set up the embedded platform with demo data, print a token, and serve."""
    s = settings(data_dir, api_port=port)
    event_loop.run(commands.up(s, receiver_port=receiver_port, console=console), s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="tenant id")] = "tnt_demo",
    subject: Annotated[str, typer.Option("--sub", help="subject (user id)")] = "dev-owner",
    scope: Annotated[list[str] | None, typer.Option(help="scope (repeat); default: all")] = None,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 3600,
    data_dir: DataDir = None,
) -> None:
    """Issue a bearer token from the built-in development issuer."""
    c = build(settings(data_dir))
    # a platform scope is no tenant role's to grant: such a token is an operator's (no roles,
    # exactly the scopes asked for), as the principal's rules expect
    operator = bool(scope) and bool(set(scope or ()) & set(PLATFORM_SCOPES))
    print(c.issuer.issue(subject, tenant, scope or ALL_SCOPES, ttl_seconds=ttl,
                         roles=[] if operator else ["owner"]))


@app.command("tenant-create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(help="tenant id")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    plan: Annotated[str, typer.Option(help="plan granted if it has none: core, pro, "
                                           "institutional")] = "core",
    data_dir: DataDir = None,
) -> None:
    """Create a tenant (idempotent) with a manually granted plan."""
    asyncio.run(commands.tenant_create(settings(data_dir), tenant_id, name or tenant_id, plan))
    console.print(f"tenant {tenant_id} ready")


@app.command("vault-create")
def vault_create(
    vault_id: Annotated[str, typer.Argument(help="vault id")],
    tenant: Annotated[str, typer.Option(help="owning tenant id")],
    label: Annotated[str, typer.Option(help="label")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a vault for a tenant (idempotent)."""
    asyncio.run(commands.vault_create(settings(data_dir), tenant, vault_id, label or vault_id))
    console.print(f"vault {vault_id} ready")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="autotrade_queue.json: a JSON list of orders")],
    tenant: Annotated[str, typer.Option(help="tenant that owns the vaults")] = "tnt_demo",
    data_dir: DataDir = None,
) -> None:
    """Ingest manager orders from a file; each order takes effect once, however often run."""
    code = asyncio.run(commands.ingest(settings(data_dir), path, tenant, console))
    raise typer.Exit(code)


@app.command("ingest-memory")
def ingest_memory(
    folder: Annotated[Path | None, typer.Argument(
        help="OS memory folder of *.json order files (default VANTA_OS_MEMORY_DIR)")] = None,
    tenant: Annotated[str, typer.Option(help="tenant that owns the vaults")] = "tnt_demo",
    watch: Annotated[bool, typer.Option(help="keep reading new files until stopped")] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes with --watch")] = 5.0,
    data_dir: DataDir = None,
) -> None:
    """Ingest the OS memory folder: each file version once; bad files go to quarantine/."""
    code = asyncio.run(commands.ingest_memory(settings(data_dir), folder, tenant, console,
                                              watch=watch, interval=interval))
    raise typer.Exit(code)


@app.command()
def dispatch(
    until_idle: Annotated[bool, typer.Option(help="stop when nothing is due")] = True,
    data_dir: DataDir = None,
) -> None:
    """Run the dispatcher worker (deliver queued child orders)."""
    s = settings(data_dir)
    event_loop.run(commands.dispatch(s, until_idle=until_idle, console=console), s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


@dlq_app.command("list")
def dlq_list(
    tenant: Annotated[str, typer.Option(help="tenant id")] = "tnt_demo",
    since: Annotated[str | None, typer.Option(help="ISO time; dead-lettered at or after")] = None,
    data_dir: DataDir = None,
) -> None:
    """List dead-lettered child orders."""
    asyncio.run(commands.dlq_list(settings(data_dir), tenant, since, console))


@dlq_app.command("redeliver")
def dlq_redeliver(
    fo_id: Annotated[list[str] | None, typer.Option("--id", help="child order id (repeat)")] = None,
    since: Annotated[str | None, typer.Option(help="every dead letter since this ISO time")] = None,
    tenant: Annotated[str, typer.Option(help="tenant id")] = "tnt_demo",
    data_dir: DataDir = None,
) -> None:
    """Queue dead letters again; each keeps its webhook-id so receivers de-duplicate it."""
    if (fo_id is None) == (since is None):
        console.print("[red]give --id (one or more) or --since[/red]")
        raise typer.Exit(2)
    n = asyncio.run(commands.dlq_redeliver(settings(data_dir), tenant, fo_id, since,
                                           console))
    console.print(f"{n} dead letter(s) queued again; a running dispatcher sends them")


@app.command("scheduler")
def scheduler_cmd(data_dir: DataDir = None) -> None:
    """Run the scheduler (overlay expiry, BTCPay period ends, operator alerts, vault
    snapshots) until SIGTERM."""
    s = settings(data_dir)
    event_loop.run(commands.scheduler(s), s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="how many manager orders to send")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON report")] = False,
) -> None:
    """Run the whole path on a throwaway database and show what each follower received."""
    from vanta.entrypoints.cli.demo import run_demo
    report = asyncio.run(run_demo(orders=orders, console=None if as_json else console))
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    raise typer.Exit(0 if report["ok"] else 1)


def run() -> None:
    """The console script: a refused start-up is one clear line, not a traceback."""
    try:
        app()
    except MasterKeyMissing as e:
        Console(stderr=True).print(f"[red]vanta: {e}[/red]", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
