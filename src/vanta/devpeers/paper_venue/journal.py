"""The paper venue's state file: an append-only journal of account snapshots.

After every request that changed an account, its complete state is appended as one JSON line
before the answer leaves; the last line per account wins on start. The file is compacted
(one line per account, written to a temporary file and renamed) on start and whenever it grows
to several times the number of accounts. A last line cut short by a crash is ignored. Lines
are not fsynced: the state survives the process, not the machine.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vanta.application.clock import Clock
from vanta.devpeers.paper_venue.state import STATE_VERSION, Account, dump_account, load_account

log = logging.getLogger("vanta.paper_venue")

COMPACT_FACTOR = 4
COMPACT_SLACK = 1000


def _line(account: Account) -> str:
    return json.dumps({"v": STATE_VERSION, **dump_account(account)}, separators=(",", ":"))


class Journal:
    """Writes account snapshots to ``path`` (only those that changed since the last write)."""

    def __init__(self, path: Path, *, compact_slack: int = COMPACT_SLACK) -> None:
        self.path = path
        self._compact_slack = compact_slack
        self._saved: dict[str, str] = {}  # account id -> last line written
        self._lines = 0

    def save(self, accounts: Mapping[str, Account], account_ids: Iterable[str]) -> None:
        lines = []
        for account_id in sorted(account_ids):
            account = accounts.get(account_id)
            if account is None:
                continue
            line = _line(account)
            if self._saved.get(account_id) != line:
                self._saved[account_id] = line
                lines.append(line)
        if not lines:
            return
        if self._lines + len(lines) > COMPACT_FACTOR * len(accounts) + self._compact_slack:
            self._compact()
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        self._lines += len(lines)

    def load(self, clock: Clock) -> dict[str, Account]:
        """Every account the file holds (its last line each), then a compacted file."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._compact()
            return {}
        accounts: dict[str, Account] = {}
        for account_id, data in self._latest().items():
            account = load_account(data, clock)
            accounts[account_id] = account
            self._saved[account_id] = _line(account)
        self._compact()
        return accounts

    def _latest(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        text = self.path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                if n == len(lines) and not text.endswith("\n"):
                    log.warning("paper venue: ignoring a state line cut short by a crash")
                    continue
                raise ValueError(f"{self.path}:{n}: not a JSON line") from None
            if data.get("v") != STATE_VERSION:
                raise ValueError(f"{self.path}:{n}: unknown state version")
            latest[data["account_id"]] = data
        return latest

    def _compact(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write("".join(self._saved[a] + "\n" for a in sorted(self._saved)))
        os.replace(tmp, self.path)
        self._lines = len(self._saved)
