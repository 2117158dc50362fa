"""Replay bundles: GET /v1/manager-orders/{id}/replay-bundle and their offline verification
(vanta.application.replay_verify) with the real Ed25519 verifier, including every kind of bad
bundle: a flipped byte, a wrong signature, a missing file, an unknown format version."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_bridged import bridged, order, settle
from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.application.public_keys import parse_public_key
from vanta.application.replay_verify import BundleReport, verify_bundle
from vanta.application.tenancy import grant_plan
from vanta.bootstrap.signing import build_verifier
from vanta.domain import sizing_v1
from vanta.domain.audit import AuditEvent, hash_of
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import Instrument
from vanta.domain.replay_bundle import (
    CHILDREN,
    MANIFEST,
    RECORDS,
    SIGNATURE,
    file_entry,
    json_bytes,
    pack,
    recomputed_children,
    unpack,
)

HOOK = {"url": "https://follower.example/hook"}


async def _world(api: Api) -> tuple[str, bytes, Any]:
    await bridged(api)
    for scale in ("0.5", "2"):
        r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                                  json={"webhook": HOOK, "scale": scale})
        assert r.status_code == 201, r.text
    body = await order(api, "M-1")
    bridged_fo = next(c["fo_id"] for c in body["children"] if c["qty"] == "40")
    await settle(api, bridged_fo)
    r = await api.client.get(f"/v1/manager-orders/{body['mo_id']}/replay-bundle",
                             headers=api.auth())
    assert r.status_code == 200, r.text
    return body["mo_id"], r.content, r


def _verify(api: Api, data: bytes, pinned: bytes | None = None) -> BundleReport:
    return verify_bundle(data, build_verifier(), pinned)


async def _pinned(api: Api) -> bytes:
    doc = (await api.client.get("/.well-known/vanta-replay-keys.json")).content
    return parse_public_key(doc)


async def test_a_bundle_is_stored_immutably_and_verifies_offline(api: Api) -> None:
    mo_id, data, r = await _world(api)
    assert r.headers["content-type"] == "application/x-tar"
    key = r.headers["x-vanta-bundle-key"]
    assert key.startswith(f"replay/tnt_a/{mo_id}/") and key.endswith(".tar")
    store = LocalObjectStore(api.container.settings.data_dir / "objects")
    assert await store.get(key) == data
    report = _verify(api, data, await _pinned(api))
    assert report.ok, report.problems
    assert report.mo_id == mo_id and report.children == 3
    [jwk] = (await api.client.get("/.well-known/vanta-replay-keys.json")).json()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert jwk["kid"] == json.loads(unpack(data)[MANIFEST])["signing"]["key_id"]
    files = unpack(data)
    assert {"inputs/manager_order.json", "inputs/sizing_snapshot.json", "inputs/followers.json",
            "inputs/instrument.json", "inputs/overlays.json", "inputs/nav_observations.json",
            "inputs/entitlements.json", "inputs/code_version.json", CHILDREN,
            "outputs/child_states.json", "outputs/attempts.json", "outputs/fills.json",
            "outputs/audit_events.jsonl", "inputs/routes.json", "outputs/legs.json",
            RECORDS, MANIFEST, SIGNATURE} == set(files)
    assert json.loads(files["outputs/fills.json"]), "the bridged child's fills are in it"
    assert len(json.loads(files["inputs/followers.json"])) == 3
    events = [json.loads(x) for x in files["outputs/audit_events.jsonl"].splitlines()]
    assert all(len(e["hash"]) == 64 and e["prev_hash"] for e in events)
    # deterministic: the same state gives the same bytes and key
    again = await api.client.get(f"/v1/manager-orders/{mo_id}/replay-bundle",
                                 headers=api.auth())
    assert again.content == data and again.headers["x-vanta-bundle-key"] == key


async def test_another_tenants_order_is_404(api: Api) -> None:
    mo_id, _, _ = await _world(api)
    r = await api.client.get(f"/v1/manager-orders/{mo_id}/replay-bundle",
                             headers=api.auth("tnt_b"))
    # tenant B is on Core, without replay: refused before any lookup, like the replay
    assert r.status_code in (403, 404)
    await grant_plan(api.container.uow(), tenant_id="tnt_b", plan_id="institutional",
                     actor="test")
    r = await api.client.get(f"/v1/manager-orders/{mo_id}/replay-bundle",
                             headers=api.auth("tnt_b"))
    assert r.status_code == 404 and r.json()["code"] == "manager_order_not_found"


def _repack(files: dict[str, bytes]) -> bytes:
    return pack(files)


async def test_a_flipped_byte_is_named_with_where_it_is(api: Api) -> None:
    _, data, _ = await _world(api)
    files = unpack(data)
    lines = files[CHILDREN].split(b"\n")
    target = json.loads(lines[1])
    at = lines[1].index(b'"qty":"') + len(b'"qty":"')
    old = lines[1][at:at + 1]
    lines[1] = lines[1][:at] + (b"7" if old != b"7" else b"8") + lines[1][at + 1:]
    files[CHILDREN] = b"\n".join(lines)
    report = _verify(api, _repack(files), await _pinned(api))
    assert not report.ok
    text = "\n".join(report.problems)
    assert f"{CHILDREN} was altered" in text and "line 2" in text
    offset = len(lines[0]) + 1 + at
    assert f"{CHILDREN} byte {offset} (line 2)" in text, text
    assert f"child {target['fo_id']}: qty recorded" in text
    # a byte flipped in the archive itself, inside a file's content, is named too
    raw = bytearray(data)
    content = unpack(data)["inputs/followers.json"]
    at = content.index(b'"scale"')  # one field of one follower, on a line of its own
    raw[data.index(content) + at + 2] ^= 0x01
    line_no = content.count(b"\n", 0, at) + 1
    start = content.rindex(b"\n", 0, at) + 1
    end = content.index(b"\n", at) - 1
    flipped = _verify(api, bytes(raw), await _pinned(api))
    assert f"inputs/followers.json was altered: its sha256 is not the manifest's; changed: " \
           f"line {line_no} (bytes {start}-{end})" in flipped.problems, flipped.problems


async def test_a_wrong_signature_is_refused(api: Api) -> None:
    _, data, _ = await _world(api)
    files = unpack(data)
    sig = json.loads(files[SIGNATURE])
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[0] ^= 0xFF
    files[SIGNATURE] = json_bytes({**sig, "signature": base64.b64encode(bytes(raw)).decode()})
    report = _verify(api, _repack(files), await _pinned(api))
    assert any(p.startswith("wrong signature") for p in report.problems), report.problems
    # signed by a key other than the pinned one
    other = bytes(32)
    report = _verify(api, data, other)
    assert any("not the pinned key" in p for p in report.problems), report.problems
    # a manifest edited to match an edited file no longer matches its signature
    files = unpack(data)
    files[CHILDREN] = files[CHILDREN].replace(b'"qty":"', b'"qty":"1', 1)
    manifest = json.loads(files[MANIFEST])
    manifest["files"][CHILDREN] = file_entry(files[CHILDREN])
    files[MANIFEST] = json_bytes(manifest)
    report = _verify(api, _repack(files))  # even with the bundle's own key
    assert any(p.startswith("wrong signature") for p in report.problems), report.problems


@pytest.mark.parametrize("name", ["inputs/followers.json", CHILDREN, MANIFEST, SIGNATURE])
async def test_a_missing_file_is_named(api: Api, name: str) -> None:
    _, data, _ = await _world(api)
    files = unpack(data)
    del files[name]
    report = _verify(api, _repack(files), await _pinned(api))
    assert f"missing file {name}" in report.problems, report.problems


async def test_an_unknown_format_version_and_garbage_are_refused(api: Api) -> None:
    _, data, _ = await _world(api)
    files = unpack(data)
    manifest = json.loads(files[MANIFEST])
    files[MANIFEST] = json_bytes({**manifest, "format": "vanta.replay-bundle/9"})
    report = _verify(api, _repack(files), await _pinned(api))
    assert report.problems == ["unknown bundle format version 'vanta.replay-bundle/9' (this "
                               "verifier reads vanta.replay-bundle/1)"]
    report = _verify(api, b"not a tar at all" * 100)
    assert len(report.problems) == 1 and "not a readable tar archive" in report.problems[0]


async def test_a_version_1_order_is_recomputed_with_the_version_1_rules(api: Api) -> None:
    """A bundle of an order sized before the exact rules (no sizing version recorded):
    rebuilt consistently (audit hashes recomputed, re-signed with the platform key), it
    verifies only because replay sizes it with sizing_v1."""
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": HOOK, "scale_mode": "nav_ratio"})
    fid = r.json()["follower_id"]
    await api.client.post(f"/v1/followers/{fid}/nav", headers=api.auth(), json={"nav": 1000})
    body = (await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 30,
        "ref_price": 100, "manager_nav": 3000})).json()
    data = (await api.client.get(f"/v1/manager-orders/{body['mo_id']}/replay-bundle",
                                 headers=api.auth())).content
    files = unpack(data)
    snap = json.loads(files["inputs/sizing_snapshot.json"])
    old = {k: v for k, v in snap.items() if k != "sizing_version"}
    files["inputs/sizing_snapshot.json"] = json_bytes(old)
    order_d = json.loads(files["inputs/manager_order.json"])
    from vanta.application.replay_verify import _order
    from vanta.domain.followers import FollowerSpec
    specs = [FollowerSpec.from_json(f) for f in json.loads(files["inputs/followers.json"])]
    rule = Instrument.from_json(json.loads(files["inputs/instrument.json"])["rule"])
    v1 = expand(_order(order_d), specs, rule, Snapshot.from_json(old))
    assert Snapshot.from_json(old).sizing_version == sizing_v1.VERSION
    assert v1.children[0].qty == Decimal(9), "version 1 floored the ratio early"
    files[CHILDREN] = recomputed_children(v1.children)
    events = []
    for line in files["outputs/audit_events.jsonl"].splitlines():
        e = json.loads(line)
        if e["action"] == "received":
            e["payload"]["snapshot"] = old
        if e["action"].startswith("created:"):
            e["payload"].update(qty="9", sizing=v1.children[0].sizing)
        ev = AuditEvent(e["event_id"], e["seq"], e["entity"], e["entity_id"], e["action"],
                        e["actor"], e["payload"], e["ts"], e["prev_hash"], "",
                        e.get("tenant_id"), e.get("hash_v", 1))
        events.append(json_bytes({**e, "hash": hash_of(ev)}))
    files["outputs/audit_events.jsonl"] = b"".join(events)
    report = _verify(api, _resigned(api, data, files), await _pinned(api))
    assert report.ok, report.problems
    assert any("sizing version 1" in n for n in report.notes)


def _resigned(api: Api, data: bytes, files: dict[str, bytes]) -> bytes:
    """``files`` under a manifest rebuilt and signed again with the platform's own key: what
    an insider with the key could produce, so only the content checks can catch it."""
    signer = api.container.signer
    assert signer is not None
    files = {k: v for k, v in files.items() if k not in (MANIFEST, SIGNATURE)}
    manifest = json.loads(unpack(data)[MANIFEST])
    manifest["files"] = {n: file_entry(d) for n, d in sorted(files.items())}
    files[MANIFEST] = json_bytes(manifest)
    sig = json.loads(unpack(data)[SIGNATURE])
    files[SIGNATURE] = json_bytes({**sig, "signature": base64.b64encode(
        signer.sign(files[MANIFEST])).decode()})
    return pack(files)


async def test_a_batch_record_altered_is_caught_by_its_merkle_root(api: Api) -> None:
    """The delivery record of the settled child is in the bundle with its inclusion proof;
    changing the record (here its status), even in a re-signed bundle, fails the proof."""
    _, data, _ = await _world(api)
    files = unpack(data)
    lines = [json.loads(x) for x in files[RECORDS].splitlines()]
    assert lines and all(r["audit_path"] is not None for r in lines)
    record = json.loads(lines[0]["record"])
    assert record["action"].startswith("dispatch:") and record["entity"] == "follower_order"
    record["payload"]["status"] = 599
    lines[0]["record"] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    files[RECORDS] = b"".join(json_bytes(r) for r in lines)
    report = _verify(api, _resigned(api, data, files), await _pinned(api))
    assert not report.ok
    assert any(f"{RECORDS} line 1" in p and "Merkle root" in p for p in report.problems), \
        report.problems


async def test_a_malformed_manifest_is_named_not_a_crash(api: Api) -> None:
    _, data, _ = await _world(api)
    files = unpack(data)
    manifest = json.loads(files[MANIFEST])
    files[MANIFEST] = json_bytes({**manifest, "files": ["not", "a", "mapping"]})
    report = _verify(api, _repack(files))
    assert any(p.startswith("manifest.json is malformed") for p in report.problems), \
        report.problems
