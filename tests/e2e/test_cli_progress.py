"""Long CLI commands draw a progress bar on a terminal and nothing when piped."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from rich.console import Console

from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.cli import commands


async def _ingest(tmp: Path, console: Console) -> int:
    s = Settings(data_dir=tmp / "data")
    c = build(s)
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="t1", name="t1")
    await create_vault(c.uow(), tenant_id="t1", vault_id="V1", label="V1")
    await c.close()
    queue = tmp / "q.json"
    queue.write_text(json.dumps([{"id": f"o{i}", "vault_id": "V1", "symbol": "AAPL",
                                  "side": "buy", "qty": 1} for i in range(3)]))
    return await commands.ingest(s, queue, "t1", console)


def test_ingest_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    assert asyncio.run(_ingest(tmp_path, console)) == 0
    text = out.getvalue()
    assert "ingesting q.json" in text and "3/3" in text


def test_ingest_output_is_plain_when_piped(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    assert asyncio.run(_ingest(tmp_path, console)) == 0
    text = out.getvalue()
    assert "ingesting" not in text and "accepted" in text
