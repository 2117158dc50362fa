"""`vanta ingest-memory`: the OS bridge. Every ``*.json`` file in the OS memory folder is a
snapshot of orders (allocations turned into orders, in the `vanta ingest` format); each
version of a file (name + sha256) is read once, remembered in a state file in the data
folder, and a file that cannot be read or holds a refused order is moved to ``quarantine/``
with a reason file beside it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.entrypoints.api import jsonbody
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.cli.order_files import INGEST_MAX_BYTES, orders_in, submit_items

STATE_FILE = "os_memory_state.json"
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class FileResult:
    name: str
    sha256: str
    result: str  # "ingested", "already processed", "quarantined", "waiting"
    detail: str = ""


class StateDamaged(Exception):
    pass


def _load_state(path: Path) -> dict[str, str]:
    """Processed versions: "name:sha256" -> when. A damaged state file is an error, not an
    empty one: starting over silently would re-read every file."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise StateDamaged(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise StateDamaged(f"{path} is not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def _save_state(path: Path, state: dict[str, str]) -> None:
    # write then rename: a crash leaves the old state whole, never half a file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _quarantine(src: Path, digest: str, reasons: list[str]) -> Path:
    qdir = src.parent / QUARANTINE
    qdir.mkdir(exist_ok=True)
    dest = qdir / src.name
    if dest.exists():  # an earlier bad version of the same name: keep both
        dest = qdir / f"{src.stem}.{digest[:12]}{src.suffix}"
    os.replace(src, dest)
    dest.with_name(dest.name + ".reason.txt").write_text(
        f"file: {src.name}\nsha256: {digest}\n"
        f"quarantined_at: {datetime.now(UTC).isoformat()}\n" + "".join(
            f"reason: {r}\n" for r in reasons))
    return dest


async def _one_file(c: Container, s: Settings, path: Path, tenant_id: str,
                    state: dict[str, str]) -> FileResult:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    key = f"{path.name}:{digest}"
    if key in state:
        return FileResult(path.name, digest, "already processed")
    try:
        items = orders_in(jsonbody.decode(raw, max_bytes=INGEST_MAX_BYTES))
        reasons = [] if items is not None else ["the file holds no list of orders"]
    except ApiProblem as e:
        items, reasons = None, [f"{e.code}: {e.detail}"]
    if items is not None:
        done = await submit_items(c.uow, items, tenant_id=tenant_id,
                                  actor=f"os-memory:{path.name}",
                                  require_instrument=s.require_instrument_rules)
        reasons = done.refused
    if reasons:
        dest = _quarantine(path, digest, reasons)
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        return FileResult(path.name, digest, "quarantined",
                          f"{reasons[0]}{more} -> {QUARANTINE}/{dest.name}")
    state[key] = datetime.now(UTC).isoformat()
    return FileResult(path.name, digest, "ingested", f"{len(items or [])} order(s)")


async def ingest_folder(c: Container, s: Settings, folder: Path, tenant_id: str, *,
                        settle_seconds: float = 0.0) -> list[FileResult]:
    """One pass over the folder, oldest name first. A file changed in the last
    ``settle_seconds`` waits for the next pass: the OS may still be writing it."""
    state_path = s.data_dir / STATE_FILE
    state = _load_state(state_path)
    out: list[FileResult] = []
    now = time.time()
    for path in sorted(p for p in folder.glob("*.json") if p.is_file()):
        if settle_seconds and now - path.stat().st_mtime < settle_seconds:
            out.append(FileResult(path.name, "", "waiting", "changed just now"))
            continue
        try:
            out.append(await _one_file(c, s, path, tenant_id, state))
        except OSError as e:  # removed or locked since the listing: the next pass sees it
            out.append(FileResult(path.name, "", "waiting", f"cannot read: {e.strerror}"))
            continue
        if out[-1].result == "ingested":
            _save_state(state_path, state)  # after each file: a crash loses no progress
    return out


def _table(results: list[FileResult]) -> Table:
    table = Table("file", "sha256", "result", "detail")
    for r in results:
        colour = {"quarantined": "red", "ingested": "green"}.get(r.result)
        shown = f"[{colour}]{r.result}[/{colour}]" if colour else r.result
        table.add_row(r.name, r.sha256[:12], shown, r.detail)
    return table


async def ingest_memory(s: Settings, folder: Path | None, tenant_id: str, console: Console,
                        *, watch: bool = False, interval: float = 5.0,
                        stop: asyncio.Event | None = None) -> int:
    """Exit code: 0 every file ingested or already processed; 1 some file was quarantined;
    2 no readable folder, no such tenant or a damaged state file. With ``watch``, passes
    repeat every ``interval`` seconds until ``stop`` is set; only new results are printed."""
    folder = folder or s.os_memory_dir
    if folder is None or not folder.is_dir():
        console.print(f"[red]no OS memory folder: {folder or 'set VANTA_OS_MEMORY_DIR'}[/red]")
        return 2
    c = build(s)
    await c.migrate()
    async with c.uow(readonly=True) as uow:
        tenant = await uow.tenants.get(tenant_id)
    if tenant is None:  # else every file would be quarantined for vault_not_found
        console.print(f"[red]tenant {tenant_id} does not exist[/red]")
        await c.close()
        return 2
    code = 0
    try:
        while True:
            try:
                results = await ingest_folder(c, s, folder, tenant_id,
                                              settle_seconds=2.0 if watch else 0.0)
            except StateDamaged as e:
                console.print(f"[red]{e}; fix or remove it (removing re-reads every file, "
                              "whose orders still apply once)[/red]")
                return 2
            if any(r.result == "quarantined" for r in results):
                code = 1
            shown = [r for r in results if not watch or r.result in ("ingested", "quarantined")]
            if shown or not watch:
                console.print(_table(shown))
            if not watch or (stop is not None and stop.is_set()):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((stop or asyncio.Event()).wait(), interval)
    finally:
        await c.close()
    return code
