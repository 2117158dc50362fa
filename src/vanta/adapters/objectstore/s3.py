"""Any S3-compatible store (AWS S3, SeaweedFS, MinIO, Ceph RGW, R2, …) through boto3.

boto3 is blocking, so every call runs in a worker thread (``asyncio.to_thread``); a boto3
client is thread-safe.

Writes are create-only:

* ``put`` first asks for the key (``HeadObject``). Identical bytes already there (compared
  by the store's own SHA-256 checksum of the stored object, or by reading the object back
  when it has none, e.g. an object someone else wrote) make the call a no-op; different
  bytes raise ``ObjectExists``.
* Otherwise it uploads with ``If-None-Match: *`` (a conditional create, supported by AWS S3
  since 2024 and by SeaweedFS; see ``conditional_put``): if another writer created the key
  in between, the store answers 412 and the race is settled like the case above. A store
  that answers 501 NotImplemented to the header is remembered and written with a plain PUT
  after the HEAD: a *head-then-put* that leaves a small window in which two concurrent
  writers of different bytes could both succeed (the last one wins). Single-writer exports
  never hit that window; turn on object lock or versioning on such a store to keep both.
* The upload carries ``x-amz-checksum-sha256`` (``ChecksumSHA256``), so the store verifies
  the bytes it received and refuses a corrupted upload (``BadDigest``); ``get`` asks for the
  checksum back (``ChecksumMode=ENABLED``) and re-checks the bytes against the recorded
  SHA-256. ``checksums=False`` turns the header off for stores that do not understand it.

Nothing here deletes or overwrites. S3 Object Lock: with ``lock_days`` > 0 a bucket the
adapter creates is created with object lock on, and every object is written in compliance
mode retained that many days (``ObjectLockRetainUntilDate``), so not even the bucket's owner
can delete or replace the stored version before then; with 0 (the default) retention is the
bucket operator's business (a default retention rule, versioning). With object lock on, AWS
requires an integrity header on every PUT; the SHA-256 checksum header satisfies it.

Addressing is path-style by default (``http://host:port/bucket/key``), which works with every
S3-compatible server and with IP endpoints; set ``path_style=False`` for virtual-hosted
buckets on AWS. The bucket is created on first use when missing (``create_bucket``).
Credentials: given explicitly, else boto3's usual chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, shared config files, instance roles).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from vanta.application.ports.objectstore import (
    SHA256_METADATA_KEY,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectRef,
    ObjectStoreAccessDenied,
    ObjectStoreError,
    ObjectStoreUnavailable,
    sha256_hex,
    validate_key,
    validate_metadata,
    validate_prefix,
)

log = logging.getLogger("vanta.objectstore.s3")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed", "AllAccessDisabled"}
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
_NOT_IMPLEMENTED = {"501", "NotImplemented"}


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None  # None: AWS S3 for ``region``
    region: str = "us-east-1"
    access_key_id: str | None = None  # None: boto3's credential chain
    secret_access_key: str | None = None
    session_token: str | None = None
    prefix: str = ""  # every key is stored under this prefix (e.g. "vanta/")
    path_style: bool = True
    create_bucket: bool = True
    conditional_put: bool = True  # send If-None-Match: * on PUT
    checksums: bool = True  # send x-amz-checksum-sha256 and ask for it back
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    lock_days: int = 0  # > 0: object lock (compliance mode), each object retained N days

    def __repr__(self) -> str:  # never print the secret
        return (f"S3Config(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
                f"region={self.region!r}, prefix={self.prefix!r})")


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class S3ObjectStore:
    def __init__(self, config: S3Config, *, client: Any | None = None) -> None:
        if config.prefix and not config.prefix.endswith("/"):
            config = replace(config, prefix=config.prefix + "/")
        self.config = config
        self._client = client if client is not None else self._make_client(config)
        self._conditional = config.conditional_put
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.config!r})"

    @staticmethod
    def _make_client(c: S3Config) -> Any:
        cfg = Config(
            region_name=c.region,
            s3={"addressing_style": "path" if c.path_style else "virtual"},
            connect_timeout=c.connect_timeout, read_timeout=c.read_timeout,
            retries={"max_attempts": c.max_attempts, "mode": "standard"},
            # We send our own SHA-256; no extra default CRC on every request, which some
            # S3-compatible stores reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.session.Session().client(
            "s3", endpoint_url=c.endpoint_url, aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key, aws_session_token=c.session_token,
            config=cfg)

    # -- the port ---------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, *,
                  content_type: str = "application/octet-stream",
                  metadata: Mapping[str, str] | None = None) -> ObjectRef:
        validate_key(key)
        meta = validate_metadata(metadata)
        return await asyncio.to_thread(self._put, key, bytes(data), content_type, meta)

    async def get(self, key: str) -> bytes:
        validate_key(key)
        return await asyncio.to_thread(self._get, key)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await asyncio.to_thread(lambda: self._head(key) is not None)

    async def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    async def ensure_bucket(self) -> None:
        """Check the bucket (creating it when missing and allowed): fails fast on bad
        credentials or a wrong endpoint."""
        await asyncio.to_thread(self._ensure_bucket)

    async def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    # -- blocking work ----------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return self.config.prefix + key

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, op)(**kwargs)
        except ClientError as e:
            code = _code(e)
            if code in _DENIED or _status(e) == 403:
                raise ObjectStoreAccessDenied(f"S3 {op} refused ({code}): check the "
                                              "credentials and their permissions") from e
            raise
        except EndpointConnectionError as e:
            raise ObjectStoreUnavailable(f"S3 endpoint unreachable: {e}") from e
        except BotoCoreError as e:
            raise ObjectStoreError(f"S3 {op} failed: {e}") from e

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            bucket = self.config.bucket
            try:
                self._call("head_bucket", Bucket=bucket)
            except ClientError as e:
                if _code(e) not in _NOT_FOUND and _status(e) != 404:
                    raise self._wrap(e, "head_bucket") from e
                if not self.config.create_bucket:
                    raise ObjectStoreError(f"bucket {bucket!r} does not exist") from e
                kwargs: dict[str, Any] = {"Bucket": bucket}
                if self.config.lock_days > 0:
                    kwargs["ObjectLockEnabledForBucket"] = True
                if self.config.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {
                        "LocationConstraint": self.config.region}
                try:
                    self._call("create_bucket", **kwargs)
                    log.info("created bucket %s", bucket)
                except ClientError as e2:
                    if _code(e2) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise self._wrap(e2, "create_bucket") from e2
            self._bucket_ready = True

    @staticmethod
    def _wrap(e: ClientError, op: str) -> ObjectStoreError:
        if _status(e) >= 500:
            return ObjectStoreUnavailable(f"S3 {op} failed ({_code(e)})")
        return ObjectStoreError(f"S3 {op} failed ({_code(e)}): "
                                f"{e.response.get('Error', {}).get('Message', '')}")

    def _head(self, key: str) -> dict[str, Any] | None:
        self._ensure_bucket()
        kwargs: dict[str, Any] = {"Bucket": self.config.bucket, "Key": self._full(key)}
        if self.config.checksums:
            kwargs["ChecksumMode"] = "ENABLED"
        try:
            return dict(self._call("head_object", **kwargs))
        except ClientError as e:
            if _code(e) in _NOT_FOUND or _status(e) == 404:
                return None
            raise self._wrap(e, "head_object") from e

    def _stored_sha(self, key: str, head: Mapping[str, Any]) -> str | None:
        """The SHA-256 of the bytes actually stored: the store's own full-object checksum
        when it kept one, else the bytes read back. Our metadata is only a client's claim."""
        checksum = head.get("ChecksumSHA256")
        if checksum and "-" not in checksum and head.get("ChecksumType", "FULL_OBJECT") \
                == "FULL_OBJECT":
            return base64.b64decode(checksum).hex()
        try:
            return sha256_hex(self._read(key)[0])
        except ObjectNotFound:
            return None

    def _existing(self, key: str, head: Mapping[str, Any], sha: str, size: int) -> ObjectRef:
        stored = self._stored_sha(key, head)
        recorded = (head.get("Metadata") or {}).get(SHA256_METADATA_KEY)
        if recorded and stored and recorded != stored:
            raise ObjectCorrupted(key, expected=recorded, actual=stored)
        if stored != sha:
            raise ObjectExists(key, stored_sha256=stored, new_sha256=sha)
        return ObjectRef(key, sha, size, etag=head.get("ETag"), created=False)

    def _put(self, key: str, data: bytes, content_type: str,
             meta: dict[str, str]) -> ObjectRef:
        sha = sha256_hex(data)
        head = self._head(key)
        if head is not None:
            return self._existing(key, head, sha, len(data))
        kwargs: dict[str, Any] = {
            "Bucket": self.config.bucket, "Key": self._full(key), "Body": data,
            "ContentType": content_type, "Metadata": {**meta, SHA256_METADATA_KEY: sha}}
        if self.config.checksums:
            kwargs["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha)).decode()
        if self.config.lock_days > 0:
            kwargs["ObjectLockMode"] = "COMPLIANCE"
            kwargs["ObjectLockRetainUntilDate"] = (datetime.now(UTC)
                                                   + timedelta(days=self.config.lock_days))
        while True:
            if self._conditional:
                kwargs["IfNoneMatch"] = "*"
            else:
                kwargs.pop("IfNoneMatch", None)
            try:
                res = self._call("put_object", **kwargs)
                return ObjectRef(key, sha, len(data), etag=res.get("ETag"), created=True)
            except ClientError as e:
                code = _code(e)
                if code in _PRECONDITION or _status(e) in (409, 412):
                    head = self._head(key)  # a concurrent writer created it first
                    if head is None:
                        raise self._wrap(e, "put_object") from e
                    return self._existing(key, head, sha, len(data))
                if self._conditional and (code in _NOT_IMPLEMENTED or _status(e) == 501):
                    log.warning("the store does not support If-None-Match on PUT; "
                                "falling back to head-then-put (not race-free)")
                    self._conditional = False
                    continue
                if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
                    raise ObjectStoreError(f"the store received corrupted bytes for {key!r} "
                                           f"({code}); nothing was written") from e
                raise self._wrap(e, "put_object") from e

    def _read(self, key: str) -> tuple[bytes, dict[str, Any]]:
        self._ensure_bucket()
        kwargs: dict[str, Any] = {"Bucket": self.config.bucket, "Key": self._full(key)}
        if self.config.checksums:
            kwargs["ChecksumMode"] = "ENABLED"
        try:
            res = dict(self._call("get_object", **kwargs))
            return res["Body"].read(), res
        except ClientError as e:
            if _code(e) in _NOT_FOUND or _status(e) == 404:
                raise ObjectNotFound(key) from None
            raise self._wrap(e, "get_object") from e

    def _get(self, key: str) -> bytes:
        data, res = self._read(key)
        actual = sha256_hex(data)
        recorded = (res.get("Metadata") or {}).get(SHA256_METADATA_KEY)
        if recorded and recorded != actual:
            raise ObjectCorrupted(key, expected=recorded, actual=actual)
        checksum = res.get("ChecksumSHA256")
        if checksum and "-" not in checksum:  # a full-object checksum, not a multipart one
            expected = base64.b64decode(checksum).hex()
            if expected != actual:
                raise ObjectCorrupted(key, expected=expected, actual=actual)
        return data

    def _list(self, prefix: str) -> builtins.list[str]:
        self._ensure_bucket()
        full = self._full(prefix)
        keys: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            try:
                res = self._call("list_objects_v2", **kwargs)
            except ClientError as e:
                raise self._wrap(e, "list_objects_v2") from e
            n = len(self.config.prefix)
            keys.extend(o["Key"][n:] for o in res.get("Contents", []))
            if not res.get("IsTruncated"):
                break
            token = res.get("NextContinuationToken")
        return sorted(keys)
