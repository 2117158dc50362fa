"""Hostile request bodies and parameters get a 4xx problem+json, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from tests.api.conftest import Api
from vanta.config import Settings
from vanta.entrypoints.api.jsonbody import MAX_DEPTH, decode, nesting_depth
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.cli.commands import ingest

ORDER = {"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
         "ref_price": 100}
JSON = {"content-type": "application/json"}


def _problem(r: object, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore
    body: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert body["code"] == code and body["status"] == status
    return body


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("body", [
    _nested(10_000),
    json.dumps({**ORDER, "meta": "X"}).encode().replace(b'"X"', _nested(10_000)),
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
])
async def test_deeply_nested_bodies_are_refused(api: Api, body: bytes) -> None:
    r = await api.client.post("/v1/manager-orders", headers={**api.auth(), **JSON},
                              content=body)
    problem = _problem(r, 400, "json_too_deep")
    assert problem["max_depth"] == MAX_DEPTH


async def test_deeply_nested_patch_is_refused(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"scale": "0.5", "webhook": {"url": "http://127.0.0.1:9/x"}})
    assert r.status_code == 201, r.text
    follower = r.json()["follower_id"]
    r = await api.client.patch(f"/v1/followers/{follower}", headers={**api.auth(), **JSON},
                               content=b'{"scale": ' + _nested(5_000) + b"}")
    _problem(r, 400, "json_too_deep")
    r = await api.client.get("/v1/vaults/VA/followers", headers=api.auth())
    assert r.json()["data"][0]["scale"] in ("0.5", 0.5)  # unchanged


async def test_a_body_at_the_depth_limit_is_accepted(api: Api) -> None:
    at_limit = json.dumps({**ORDER, "meta": "X"}).encode().replace(
        b'"X"', _nested(MAX_DEPTH - 1))  # the outer object is level 1
    r = await api.client.post("/v1/manager-orders", headers={**api.auth(), **JSON},
                              content=at_limit)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("body", [
    b'{"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 0, "qty": 1,'
    b' "ref_price": 100}',
    b'{"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 1,'
    b' "ref_price": 100, "meta": {"a": 1, "a": 2}}',
])
async def test_duplicate_keys_are_refused_and_change_nothing(api: Api, body: bytes) -> None:
    r = await api.client.post("/v1/manager-orders", headers={**api.auth(), **JSON},
                              content=body)
    _problem(r, 400, "duplicate_json_key")
    async with api.container.uow() as uow:
        assert await uow.manager_orders.list("tnt_a", None, 10) == []


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth('{"a": "[[[[[[\\"[[[[", "b": [1, {"c": []}]}') == 4
    assert decode(json.dumps({"x": "[" * 10_000}).encode()) == {"x": "[" * 10_000}


@pytest.mark.parametrize("raw", [b'{"qty": NaN}', b"[Infinity]", b"[-Infinity]",
                                 b"\xff\xfe[\x001\x00]\x00"])
def test_non_json_extensions_and_other_encodings_are_malformed(raw: bytes) -> None:
    with pytest.raises(ApiProblem) as e:
        decode(raw)
    assert e.value.status == 400 and e.value.code == "malformed_json"


def test_fractions_decode_as_decimals() -> None:
    from decimal import Decimal
    assert decode(b'{"qty": 0.1}') == {"qty": Decimal("0.1")}


# --- the feed's cursor --------------------------------------------------------------------

@pytest.mark.parametrize("cursor", ["9223372036854775808", str(10**30), "-1"])
async def test_out_of_range_feed_cursor_is_a_problem(api: Api, cursor: str) -> None:
    r = await api.client.get(f"/v1/feed?cursor={cursor}&follow=false", headers=api.auth())
    _problem(r, 422, "validation_error")


@pytest.mark.parametrize("last_id", [b"9223372036854775808", b"-1", "²".encode("latin-1"),
                                     b"12abc"])
async def test_out_of_range_last_event_id_is_a_problem(api: Api, last_id: bytes) -> None:
    r = await api.client.get("/v1/feed?follow=false",
                             headers={**api.auth(), "Last-Event-ID": last_id})
    _problem(r, 400, "invalid_last_event_id")


async def test_the_largest_cursor_is_served(api: Api) -> None:
    r = await api.client.get("/v1/feed?cursor=9223372036854775807&follow=false",
                             headers=api.auth())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    r = await api.client.get("/v1/feed?follow=false",
                             headers={**api.auth(), "Last-Event-ID": "9223372036854775807"})
    assert r.status_code == 200


async def test_openapi_states_the_cursor_maximum(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    params = spec["paths"]["/v1/feed"]["get"]["parameters"]
    cursor = next(p for p in params if p["name"] == "cursor")
    schema = cursor["schema"].get("anyOf", [cursor["schema"]])[0]
    assert schema["maximum"] == 2**63 - 1 and schema["minimum"] == 0


# --- the redelivery body cap ----------------------------------------------------------------

def _ids(n: int) -> list[str]:
    return [f"{i:064d}" for i in range(n)]  # 64 characters each, the longest documented


async def test_redeliver_takes_the_documented_10000_ids(api: Api) -> None:
    body = json.dumps({"fo_ids": _ids(10_000)}).encode()
    assert len(body) > 64 * 1024
    r = await api.client.post("/v1/dead-letters/redeliver", headers={**api.auth(), **JSON},
                              content=body)
    assert r.status_code == 200, r.text
    assert r.json()["requeued"] == []  # none of them is a dead letter


async def test_redeliver_refuses_10001_ids(api: Api) -> None:
    r = await api.client.post("/v1/dead-letters/redeliver", headers=api.auth(),
                              json={"fo_ids": _ids(10_001)})
    _problem(r, 422, "invalid_redelivery")


async def test_redeliver_body_cap_is_one_mebibyte(api: Api) -> None:
    body = json.dumps({"fo_ids": ["x" * 1000] * 1100}).encode()
    assert len(body) > 1024 * 1024
    r = await api.client.post("/v1/dead-letters/redeliver", headers={**api.auth(), **JSON},
                              content=body)
    _problem(r, 413, "body_too_large")


async def test_other_routes_keep_the_64_kib_cap(api: Api) -> None:
    body = json.dumps({**ORDER, "meta": {"pad": "x" * (64 * 1024)}}).encode()
    r = await api.client.post("/v1/manager-orders", headers={**api.auth(), **JSON},
                              content=body)
    _problem(r, 413, "body_too_large")


# --- the CLI's order file goes through the same decoder -------------------------------------

@pytest.mark.parametrize(("content", "code"), [
    (b'[{"id": "M-1", "qty": 0, "qty": 1}]', "duplicate_json_key"),
    (b"[" * 10_000 + b"]" * 10_000, "json_too_deep"),
])
async def test_ingest_refuses_the_same_bodies(tmp_path: Path, content: bytes,
                                              code: str) -> None:
    queue = tmp_path / "autotrade_queue.json"
    queue.write_bytes(content)
    console = Console(record=True, width=200)
    assert await ingest(Settings(data_dir=tmp_path / "data"), queue, "t1", console) == 2
    assert code in console.export_text()
    assert not (tmp_path / "data").exists()  # refused before anything was opened


async def test_an_oversized_body_is_not_read_to_the_end(api: Api) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 16 * 1024

    r = await api.client.post("/v1/invitations/some-token/accept", content=body(),
                              headers=JSON)
    _problem(r, 413, "body_too_large")
    assert sent < 10  # 64 KiB is four chunks and a bit; the other 15 MiB were never read


async def test_a_declared_oversized_body_is_refused_up_front(api: Api) -> None:
    r = await api.client.post("/v1/invitations/some-token/accept", headers=JSON,
                              content=b"{}" + b" " * (64 * 1024))
    _problem(r, 413, "body_too_large")
