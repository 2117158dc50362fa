"""Object storage adapters (``local``, ``s3``); the port, its errors and key rules live in
:mod:`vanta.application.ports.objectstore` and are re-exported here."""

from vanta.application.ports.objectstore import (
    MAX_KEY_LENGTH,
    MAX_METADATA_BYTES,
    SHA256_METADATA_KEY,
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectRef,
    ObjectStore,
    ObjectStoreAccessDenied,
    ObjectStoreError,
    ObjectStoreUnavailable,
    sha256_hex,
    validate_key,
    validate_metadata,
    validate_prefix,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_METADATA_BYTES",
    "SHA256_METADATA_KEY",
    "InvalidKey",
    "ObjectCorrupted",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectRef",
    "ObjectStore",
    "ObjectStoreAccessDenied",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "sha256_hex",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]
