"""Merkle tree hashes and inclusion proofs as RFC 9162 (section 2.1) defines them, SHA-256.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``; a tree of ``n`` leaves splits at the largest power of two
below ``n``. The distinct prefixes keep a leaf from passing for an interior node (the
second-preimage attack on plain Merkle trees), and the split rule means there is no
duplicated odd leaf (which lets two different leaf lists share a root). An auditor can
check a proof with any RFC 9162 / RFC 6962 implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ALGORITHM = "rfc9162-sha256"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head over already-hashed ``leaves`` (``leaf_hash`` of each record)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index``: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    # walk down from the root, then reverse: the RFC lists the path bottom-up
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(root(leaves[lo + k:hi]))
            hi = lo + k
        else:
            path.append(root(leaves[lo:lo + k]))
            lo = lo + k
    return path[::-1]


def inclusion_paths(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every leaf's audit path at once (``inclusion_path`` of each), hashing each node once:
    what a replay bundle needs for all of a batch's records."""
    def walk(lo: int, hi: int) -> tuple[bytes, list[list[bytes]]]:
        if hi - lo == 1:
            return leaves[lo], [[]]
        k = _split(hi - lo)
        left, left_paths = walk(lo, lo + k)
        right, right_paths = walk(lo + k, hi)
        for p in left_paths:
            p.append(right)
        for p in right_paths:
            p.append(left)
        return node_hash(left, right), left_paths + right_paths

    return walk(0, len(leaves))[1] if leaves else []


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves for ``leaf`` at ``index`` in a tree of ``size`` leaves,
    or None when the path cannot belong to such a tree (RFC 9162, section 2.1.3.2)."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None  # a longer path than the tree is deep
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None
