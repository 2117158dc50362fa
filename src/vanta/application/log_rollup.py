"""The daily roll-up of the log folder: every rotated file (``mirror_dispatch``, ``trade_log``,
``vanta``) goes to the object store under ``logs/<host>/<day>/<name>``, with a manifest
(``logs/<host>/<day>/manifest.json``) listing each file's SHA-256, size and line count. Keys
are immutable: a pass run again writes nothing new; a file that changed after its upload is
reported and kept on disk rather than overwriting anything.

A day is rolled up once ``grace`` has passed after it ended, so lines buffered across midnight
have landed. Local copies are deleted once their day is older than ``keep_days`` and the
stored manifest holds the very same bytes (by SHA-256): disk use stays bounded and nothing
leaves the disk before it is safely stored."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from vanta.application.ports.journal import LogArchive, RotatedFile
from vanta.application.ports.objectstore import ObjectExists, ObjectStore

__all__ = ["MANIFEST_FORMAT", "RollupResult", "roll_up_logs"]

MANIFEST_FORMAT = "vanta.log-rollup/1"


@dataclass
class RollupResult:
    manifests: list[str] = field(default_factory=list)  # keys written by this pass
    uploaded: list[str] = field(default_factory=list)  # object keys newly stored
    deleted: list[str] = field(default_factory=list)  # local files removed
    problems: list[str] = field(default_factory=list)


def _prefix(host: str, day: date) -> str:
    return f"logs/{host}/{day.isoformat()}"


async def _roll_day(archive: LogArchive, store: ObjectStore, host: str, day: date,
                    files: list[RotatedFile], result: RollupResult) -> dict[str, str] | None:
    """Upload one day's files and its manifest; returns name → sha256 as stored, or None
    when something could not be stored."""
    prefix = _prefix(host, day)
    entries: list[dict[str, Any]] = []
    for f in files:
        data = archive.read(f.name)
        key = f"{prefix}/{f.name}"
        try:
            ref = await store.put(key, data, content_type="application/x-ndjson",
                                  metadata={"day": day.isoformat(), "host": host})
        except ObjectExists:
            result.problems.append(f"{f.name} changed after it was stored as {key}; "
                                   "kept on disk")
            return None
        if ref.created:
            result.uploaded.append(key)
        entries.append({"name": f.name, "key": key, "sha256": ref.sha256, "bytes": ref.size,
                        "lines": data.count(b"\n")})
    manifest = {"format": MANIFEST_FORMAT, "host": host, "day": day.isoformat(),
                "files": entries}
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    mkey = f"{prefix}/manifest.json"
    try:
        ref = await store.put(mkey, body, content_type="application/json")
    except ObjectExists:
        # an earlier pass stored a manifest for fewer or other files: keep it, report
        result.problems.append(f"{mkey} exists with other content; kept on disk")
        return None
    if ref.created:
        result.manifests.append(mkey)
    return {e["name"]: e["sha256"] for e in entries}


async def roll_up_logs(archive: LogArchive, store: ObjectStore, *, host: str, now: datetime,
                       keep_days: int = 7, grace: timedelta = timedelta(minutes=10)
                       ) -> RollupResult:
    result = RollupResult()
    by_day: dict[date, list[RotatedFile]] = defaultdict(list)
    for f in archive.rotated():
        by_day[f.day].append(f)
    for day in sorted(by_day):
        day_end = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1)
        if now < day_end + grace:
            continue
        stored = await _roll_day(archive, store, host, day, by_day[day], result)
        if stored is None or day >= now.date() - timedelta(days=keep_days):
            continue
        for f in by_day[day]:
            # the bytes on disk are the bytes stored: only then does the local copy go
            if stored.get(f.name) == hashlib.sha256(archive.read(f.name)).hexdigest():
                archive.delete(f.name)
                result.deleted.append(f.name)
    return result
