"""The replay bundle's format: one deterministic tar archive with the inputs of a manager
order's sizing, its outputs, and a signed manifest. Pure (in-memory archives only); the
application gathers the rows (``application.replay_bundle``) and verifies bundles offline
(``application.replay_verify``).

Layout (format ``vanta.replay-bundle/1``)::

    manifest.json                 format, order, signing key id, code version, and per file
                                  its sha256, size and a short hash of every line
    manifest.sig                  the Ed25519 signature of manifest.json (and the key)
    inputs/manager_order.json     the order as received
    inputs/sizing_snapshot.json   price, positions, NAV states, overlay, sizing version
    inputs/followers.json         every follower's settings as of the order
    inputs/instrument.json        the instrument rule it was sized on (and where it came from)
    inputs/overlays.json          the vault's overlays active at the order's time
    inputs/nav_observations.json  the NAV reports up to the order, vault and followers
    inputs/entitlements.json      the tenant's plan and entitlements (at export)
    inputs/code_version.json      package and sizing version
    inputs/routes.json            each cross-rail child's router input: request, fee models
    outputs/children.jsonl        one line per child: what sizing decided (recomputable)
    outputs/child_states.json     what became of each child (state, broker ref, fills total)
    outputs/attempts.json         every delivery attempt
    outputs/fills.json            every fill
    outputs/legs.json             every cross-rail child's legs as stored
    outputs/audit_events.jsonl    the audit events of the order, its children and their
                                  legs, with their chain hashes

The archive is byte-for-byte deterministic: members sorted by name, times, owners and modes
fixed, ustar format, no compression.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from vanta.domain.audit import canonical_json
from vanta.domain.money import normalize
from vanta.domain.orders import ChildOrder

BUNDLE_FORMAT = "vanta.replay-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHILDREN = "outputs/children.jsonl"
# per-child records settled in batch audit events, each with its inclusion proof
RECORDS = "outputs/audit_records.jsonl"
MAX_MEMBERS = 64
MAX_BUNDLE_BYTES = 1 << 30


class BundleInvalid(ValueError):
    """The archive cannot be read as a bundle; the message names the problem."""


def json_bytes(data: Any) -> bytes:
    """One compact canonical JSON line (the ``.jsonl`` files)."""
    return (canonical_json(data) + "\n").encode()


def json_doc(data: Any) -> bytes:
    """A canonical JSON document, one value per line, so the manifest's line hashes place a
    changed byte to within one field."""
    return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, default=str)
            + "\n").encode()


def dec(d: Decimal | None) -> str | None:
    return None if d is None else str(normalize(d))


def pack(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack(data: bytes) -> dict[str, bytes]:
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleInvalid(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                if len(out) >= MAX_MEMBERS:
                    raise BundleInvalid(f"the bundle has more than {MAX_MEMBERS} files")
                if not m.isfile() or m.name.startswith("/") or ".." in m.name.split("/"):
                    raise BundleInvalid(f"unexpected archive member {m.name!r}")
                if m.name in out:
                    raise BundleInvalid(f"the file {m.name} appears twice")
                f = tar.extractfile(m)
                out[m.name] = f.read() if f is not None else b""
    except tarfile.TarError as e:
        raise BundleInvalid(f"not a readable tar archive ({e})") from None
    if not out:
        raise BundleInvalid("not a replay bundle: the archive is empty")
    return out


def line_hashes(data: bytes) -> list[str]:
    return [hashlib.sha256(line).hexdigest()[:16] for line in data.split(b"\n")]


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "lines": line_hashes(data)}


def changed_lines(data: bytes, recorded: Iterable[str]) -> list[tuple[int, int, int]]:
    """(line number, first byte, last byte) of each line whose hash differs from the one the
    manifest recorded; a line added or removed shows as the lines after it differing."""
    out: list[tuple[int, int, int]] = []
    offset = 0
    rec = list(recorded)
    for n, line in enumerate(data.split(b"\n"), start=1):
        h = hashlib.sha256(line).hexdigest()[:16]
        if n > len(rec) or rec[n - 1] != h:
            out.append((n, offset, offset + max(len(line) - 1, 0)))
        offset += len(line) + 1
    return out


def child_line(c: Mapping[str, Any]) -> dict[str, Any]:
    """What sizing decided for one child: the fields a replay recomputes."""
    return {"fo_id": c["fo_id"], "follower_id": c["follower_id"], "symbol": c["symbol"],
            "venue": c["venue"], "side": c["side"], "qty": dec(c["qty"]),
            "cap_applied": bool(c["cap_applied"]), "skip_reason": c["skip_reason"],
            "sizing": dict(c["sizing"] or {})}


def children_jsonl(children: Iterable[Mapping[str, Any]]) -> bytes:
    lines = sorted((child_line(c) for c in children), key=lambda d: d["fo_id"])
    return b"".join(json_bytes(d) for d in lines)


def recomputed_children(children: Iterable[ChildOrder]) -> bytes:
    return children_jsonl({"fo_id": c.fo_id, "follower_id": c.follower_id,
                           "symbol": c.symbol, "venue": c.venue, "side": c.side.value,
                           "qty": c.qty, "cap_applied": c.cap_applied,
                           "skip_reason": c.skip_reason, "sizing": c.sizing}
                          for c in children)


def first_difference(recorded: bytes, recomputed: bytes) -> str | None:
    """Where two renderings of the children first differ: byte, line, child and fields."""
    if recorded == recomputed:
        return None
    at = next((i for i, (a, b) in enumerate(zip(recorded, recomputed, strict=False))
               if a != b), min(len(recorded), len(recomputed)))
    line_no = recorded.count(b"\n", 0, at) + 1
    rec_lines, new_lines = recorded.split(b"\n"), recomputed.split(b"\n")
    rec = rec_lines[line_no - 1] if line_no <= len(rec_lines) else b""
    new = new_lines[line_no - 1] if line_no <= len(new_lines) else b""
    where = f"{CHILDREN} byte {at} (line {line_no})"
    detail = _field_diff(rec, new)
    return f"{where}: {detail}"


def _field_diff(rec: bytes, new: bytes) -> str:
    try:
        a, b = json.loads(rec) if rec else {}, json.loads(new) if new else {}
    except ValueError:
        return (f"recorded {rec[:80]!r}, recomputed {new[:80]!r} (the recorded line is not "
                "JSON)")
    fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    child = a.get("fo_id") or b.get("fo_id")
    parts = [f"{k} recorded {a.get(k)!r}, recomputed {b.get(k)!r}" for k in fields[:4]]
    return f"child {child}: " + "; ".join(parts) if parts else \
        f"recorded {rec[:80]!r}, recomputed {new[:80]!r}"
