"""``vanta paper …``: the paper venue as its own process.

``vanta paper venue --port 0 --port-file F [--state-file S]`` serves the simulator's HTTP API
(:mod:`vanta.devpeers.paper_venue`) on 127.0.0.1 until SIGTERM or SIGINT. Register a
bridged follower with ``{"broker": "paper", "credentials": {"url": "http://127.0.0.1:PORT",
"cash": "100000"}}`` to trade through it; the follower id is its account at the venue.

Also runnable without the ``vanta`` command: ``python -m vanta.entrypoints.cli.paper_cli venue``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

paper_app = typer.Typer(help="The paper trading venue (simulator) as a separate process.",
                        no_args_is_help=True)


@paper_app.callback()
def _paper() -> None:
    """The paper trading venue (simulator) as a separate process."""


def _decimal(value: str, name: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a decimal number",
                                 param_hint=f"--{name}") from None
    if not d.is_finite() or d < 0:
        raise typer.BadParameter("must be a finite number >= 0", param_hint=f"--{name}")
    return d


def _fill_steps(value: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter("give MIN,MAX (e.g. 1,3)", param_hint="--fill-steps") from None
    if not 1 <= lo <= hi:
        raise typer.BadParameter("need 1 <= MIN <= MAX", param_hint="--fill-steps")
    return lo, hi


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@paper_app.command()
def venue(
    host: Annotated[str, typer.Option(help="bind address (the venue has no authentication)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 picks a free one)")] = 8100,
    port_file: Annotated[Path | None, typer.Option(help="write the bound port here")] = None,
    state_file: Annotated[Path | None, typer.Option(
        help="keep accounts and orders in this JSON-lines file across restarts")] = None,
    cash: Annotated[str, typer.Option(help="cash of a new account without its own")]
    = "100000",
    tick_ms: Annotated[int, typer.Option(
        help="market tick in milliseconds (0: only POST /v1/admin/.../step moves it)")] = 250,
    volatility: Annotated[str, typer.Option(help="largest relative price move per tick")]
    = "0.002",
    fill_steps: Annotated[str, typer.Option(help="an order fills in MIN,MAX parts")] = "1,3",
    reject_probability: Annotated[str, typer.Option(
        help="chance that an accepted order is rejected on its first tick")] = "0",
    fee_rate: Annotated[str, typer.Option(help="fee as a fraction of the notional")] = "0",
    seed: Annotated[int, typer.Option(help="seed (mixed with each account id)")] = 0,
    submit_delay_ms: Annotated[int, typer.Option(
        help="hold each submit's answer back this long after the order is placed")] = 0,
) -> None:
    """Serve the paper venue: one simulated account per follower, reached over HTTP."""
    from vanta.devpeers.paper_venue import PaperSettings, PaperVenue, run_venue
    from vanta.entrypoints.cli.serving import bind, write_port_file

    if tick_ms < 0 or submit_delay_ms < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--tick-ms/--submit-delay-ms")
    template = PaperSettings(
        prices={}, cash=_decimal(cash, "cash"), seed=seed,
        volatility=_decimal(volatility, "volatility"),
        tick=timedelta(milliseconds=tick_ms) if tick_ms else None,
        fill_steps=_fill_steps(fill_steps),
        reject_probability=_decimal(reject_probability, "reject-probability"),
        fee_rate=_decimal(fee_rate, "fee-rate"))
    if not _loopback(host):
        print(f"warning: the paper venue has no authentication and listens on {host}",
              file=sys.stderr)
    paper = PaperVenue(template, state_file=state_file,
                       submit_delay=timedelta(milliseconds=submit_delay_ms))
    sock = bind(host, port)

    def ready(bound: int) -> None:
        if port_file is not None:
            write_port_file(port_file, bound)
        print(f"paper venue on http://{host}:{bound} ({len(paper.accounts)} accounts)",
              file=sys.stderr, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_venue(paper, sock, stop=stop, ready=ready)

    asyncio.run(main())


if __name__ == "__main__":
    paper_app()
