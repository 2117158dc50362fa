"""The "Try:" lines ``vanta up`` prints: each must work when pasted into a shell."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

from vanta.application.seed import DEMO_VAULT_ID


def vanta_command(argv0: str | None = None) -> str:
    """A way to call ``vanta`` that exists from any directory: the running executable by its
    absolute path (``.venv/bin/vanta`` is not on PATH until the venv is activated)."""
    exe = Path(argv0 if argv0 is not None else sys.argv[0])
    if exe.name == "vanta" and exe.is_file():
        return shlex.quote(str(exe.resolve()))
    found = shutil.which("vanta")
    if found:
        return shlex.quote(str(Path(found).resolve()))
    # started some other way (python -m, a test runner): the interpreter always exists
    return f"{shlex.quote(sys.executable)} -m vanta.entrypoints.cli.main"


def try_commands(api: str, data_dir: Path, vanta: str) -> list[str]:
    order = json.dumps({"vault_id": DEMO_VAULT_ID, "symbol": "AAPL", "side": "buy",
                        "qty": 40, "ref_price": 190}, separators=(",", ":"))
    data = shlex.quote(str(data_dir.resolve()))
    return [
        f"export VANTA_TOKEN=$({vanta} token --data-dir {data})",
        f'curl -s -H "Authorization: Bearer $VANTA_TOKEN" {api}/v1/vaults',
        # a fresh key each second: pasting again later sends a new order, within the same
        # second the platform answers with the first one (that is what the key is for)
        f'curl -s -X POST -H "Authorization: Bearer $VANTA_TOKEN" '
        f'-H "Content-Type: application/json" -H "Idempotency-Key: try-$(date +%s)" '
        f"{api}/v1/manager-orders -d {shlex.quote(order)}",
    ]
