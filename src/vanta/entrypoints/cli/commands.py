"""Async bodies of the CLI commands."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vanta.application import vault_cache
from vanta.application.bridged import confirm_fills
from vanta.application.dead_letters import list_dead_letters, redeliver
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import (
    DEMO_TENANT_ID,
    DEMO_VAULT_ID,
    create_tenant,
    seed_demo,
)
from vanta.application.tenancy import grant_plan
from vanta.application.vaults import add_vault
from vanta.bootstrap import build
from vanta.bootstrap.logging import configure_logging
from vanta.bootstrap.stores import build_cache_store
from vanta.config import Settings
from vanta.devpeers import receiver as receiver_mod
from vanta.domain.errors import Conflict, NotEntitled, ValidationFailed
from vanta.domain.webhook_signing import standard_secret_string
from vanta.entrypoints.api import jsonbody
from vanta.entrypoints.api.app import run_scheduler
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.cli import memory_ingest
from vanta.entrypoints.cli.order_files import INGEST_MAX_BYTES, orders_in, submit_items
from vanta.entrypoints.cli.progress import progress_bar
from vanta.entrypoints.cli.serving import bind, write_port_file
from vanta.entrypoints.cli.serving import serve as serve_app
from vanta.entrypoints.cli.try_commands import try_commands, vanta_command


async def serve(s: Settings, *, port_file: Path | None, run_dispatcher: bool) -> None:
    configure_logging(s.data_dir, keep_days=s.log_max_days,
                      service="vanta-api")
    sock = bind(s.api_host, s.api_port)
    port = sock.getsockname()[1]
    if s.api_port == 0:
        s = s.model_copy(update={"api_port": port})
    c = build(s)
    await c.migrate()
    if port_file is not None:
        write_port_file(port_file, port)
    await serve_app(c, sock, run_dispatcher=run_dispatcher, log_level="warning")


async def up(s: Settings, *, receiver_port: int, console: Console) -> None:
    if "127.0.0.1/32" not in s.webhook_allowlist:  # the demo followers' receiver is local
        s = s.model_copy(update={"webhook_allowlist": [*s.webhook_allowlist, "127.0.0.1/32"]})
    # JSON lines, and the log folder under the data directory, like every long-running command
    configure_logging(s.data_dir, keep_days=s.log_max_days,
                      service="vanta-up")
    c = build(s)
    await c.migrate()
    rcv = receiver_mod.Receiver()
    runner, rport = await receiver_mod.start(rcv, "127.0.0.1", receiver_port)
    base = f"http://127.0.0.1:{rport}"
    with progress_bar(console, "seeding the demo") as report:
        await seed_demo(c.uow, c.secrets, webhook_base=base, on_progress=report)
    async with c.uow() as uow:
        followers = await uow.followers.list_for_vault(DEMO_TENANT_ID, DEMO_VAULT_ID)
    for f in followers:
        url = f.webhook_url or ""
        if url.startswith(base + "/hooks/") and f.hmac_key_ref is not None:
            rcv.secrets[url.rsplit("/", 1)[1]] = standard_secret_string(
                c.secrets.get(f.hmac_key_ref))
    tok = c.issuer.issue("dev-owner", DEMO_TENANT_ID, ALL_SCOPES, roles=["owner"],
                         ttl_seconds=12 * 3600)
    api = f"http://{s.api_host}:{s.api_port}"
    console.print(f"[bold green]Vanta Platform[/] embedded profile, data in {s.data_dir}")
    console.print(f"API      {api}   (OpenAPI: {api}/docs)")
    print(f"App      {api}/app")
    print(f"Sign in  {api}/app/login?as_role=owner")
    console.print("         (one click signs in the demo owner; as_role=ops, auditor or "
                  "follower for the others)")
    console.print(f"Receiver {base}/hooks/<follower>  (verifies signatures; demo followers)")
    console.print(f"Tenant {DEMO_TENANT_ID}, vault {DEMO_VAULT_ID}, {len(followers)} followers")
    console.print("\n[bold]Dev token[/] (12 h, all scopes):")
    print(tok)
    console.print("\nTry:")
    for line in try_commands(api, s.data_dir, vanta_command()):
        print(f"  {line}")
    try:
        await serve_app(c, bind(s.api_host, s.api_port), log_level="info")
    finally:
        await runner.cleanup()


async def tenant_create(s: Settings, tenant_id: str, name: str, plan: str) -> None:
    c = build(s)
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=tenant_id, name=name)
    async with c.uow(readonly=True) as uow:
        has_plan = await uow.subscriptions.current(tenant_id) is not None
    if not has_plan:  # a manually granted plan; billing providers replace it
        await grant_plan(c.uow(), tenant_id=tenant_id, plan_id=plan, actor="cli")
    await c.close()


async def vault_create(s: Settings, tenant_id: str, vault_id: str, label: str) -> None:
    """The same use case as ``POST /v1/vaults``: the plan's vault count is checked in the
    transaction that adds the vault. A vault that already exists is left as it is."""
    c = build(s)
    await c.migrate()
    async with c.uow() as uow:
        tenant = await uow.tenants.get(tenant_id)
    if tenant is None:
        await c.close()
        raise SystemExit(f"tenant {tenant_id} does not exist")
    # API replicas cache vault lists behind a generation in the shared store: bump it here
    # too (on Redis), so they see the new vault on their next read.
    store = build_cache_store(s) if s.redis_url or s.redis_sentinels else None
    if store is not None:
        vault_cache.configure(store)
    try:
        await add_vault(c.uow(), tenant_id=tenant_id, actor="cli",
                        raw={"vault_id": vault_id, "label": label})
    except Conflict as e:
        if e.code != "vault_exists":
            raise
    except (NotEntitled, ValidationFailed) as e:
        raise SystemExit(f"refused: {e.code} ({e.message})") from None
    finally:
        if store is not None:
            await store.close()
        await c.close()


async def ingest(s: Settings, path: Path, tenant_id: str, console: Console) -> int:
    """Returns the exit code: 0 if every order was accepted (new or already ingested)."""
    try:
        # the API's decoder: the same depth and duplicate-key rules as a request body
        doc = jsonbody.decode(path.read_bytes(), max_bytes=INGEST_MAX_BYTES)
    except OSError as e:
        console.print(f"[red]cannot read {path}: {e}[/red]")
        return 2
    except ApiProblem as e:
        console.print(f"[red]cannot read {path}: {e.code}: {e.detail}[/red]")
        return 2
    items = orders_in(doc)
    if items is None:
        console.print("[red]the file must hold a JSON list of orders[/red]")
        return 2
    c = build(s)
    await c.migrate()
    with progress_bar(console, f"ingesting {path.name}") as report:
        done = await submit_items(c.uow, items, tenant_id=tenant_id, actor=f"file:{path.name}",
                                  require_instrument=s.require_instrument_rules,
                                  report=report)
    table = Table("#", "id", "symbol", "side", "qty", "result")
    for row in done.rows:
        table.add_row(*row)
    console.print(table)
    await c.close()
    return 1 if done.refused else 0


async def ingest_memory(s: Settings, folder: Path | None, tenant_id: str, console: Console,
                        *, watch: bool, interval: float) -> int:
    stop = stop_on_signals() if watch else None  # SIGTERM ends the watch after a pass
    if watch:  # a long-running command: JSON logs and the log folder
        configure_logging(s.data_dir, keep_days=s.log_max_days,
                          service="vanta-ingest")
    return await memory_ingest.ingest_memory(s, folder, tenant_id, console, watch=watch,
                                             interval=interval, stop=stop)


async def dispatch(s: Settings, *, until_idle: bool, console: Console) -> None:
    configure_logging(s.data_dir, keep_days=s.log_max_days,
                      service="vanta-dispatch")
    c = build(s)
    await c.migrate()
    try:
        if not until_idle:
            # SIGTERM/SIGINT: stop taking work, finish what is in flight, then exit.
            stop = stop_on_signals()
            jobs = [c.dispatcher.run_forever(s.dispatcher_poll_seconds, stop)]
            listener = c.wake_on_commit(c.dispatcher.wakeup, stop)
            if listener is not None:  # woken by commits, not only by the poll
                jobs.append(listener)
            await asyncio.gather(*jobs)
            return
        total = 0
        while True:
            n = await c.dispatcher.run_once()
            if c.dispatcher.brokers is not None:
                await confirm_fills(c.uow, c.dispatcher.brokers, journal=c.dispatcher.journal)
            total += n
            if n:
                continue
            async with c.uow() as uow:
                waiting = await uow.outbox.pending_count("mirror.dispatch")
            if waiting == 0:
                break
            await asyncio.sleep(s.dispatcher_poll_seconds)
        console.print(f"dispatcher idle after {total} deliveries")
    finally:
        await c.close()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


async def dlq_list(s: Settings, tenant_id: str, since: str | None, console: Console) -> None:
    c = build(s)
    await c.migrate()
    rows = await list_dead_letters(c.uow(), tenant_id=tenant_id, since=_since(since),
                                   limit=10_000)
    table = Table("fo_id (webhook-id)", "follower", "symbol", "qty", "attempts",
                  "dead-lettered", "last error")
    for r in rows:
        table.add_row(r.fo_id, r.follower_id[:8], r.symbol, str(r.qty),
                      str(r.dispatch_attempts),
                      r.dead_lettered_at.isoformat() if r.dead_lettered_at else "",
                      r.last_error or "")
    console.print(table)
    await c.close()


async def dlq_redeliver(s: Settings, tenant_id: str, fo_ids: list[str] | None,
                        since: str | None, console: Console) -> int:
    c = build(s)
    await c.migrate()
    with progress_bar(console, "queueing dead letters again") as report:
        done = await redeliver(c.uow(), tenant_id=tenant_id, fo_ids=fo_ids,
                               since=_since(since), actor="cli", on_progress=report)
    await c.close()
    return len(done.requeued)


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def scheduler(s: Settings) -> None:
    """The scheduler on its own process: overlay expiry, BTCPay period ends, operator
    alerts, vault snapshots (the API runs it too when it runs the dispatcher)."""
    configure_logging(s.data_dir, keep_days=s.log_max_days,
                      service="vanta-scheduler")
    c = build(s)
    await c.migrate()
    try:
        await run_scheduler(c, stop_on_signals())
    finally:
        await c.close()
