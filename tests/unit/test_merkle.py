"""RFC 9162 Merkle trees (vanta.domain.merkle) against the Certificate Transparency test
vectors, and every inclusion proof of trees up to 70 leaves folded back to the root."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vanta.domain import merkle

# the eight leaf inputs of the Certificate Transparency reference tests, and the root of
# the tree over the first n of them
INPUTS = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(n: int) -> None:
    assert merkle.root([merkle.leaf_hash(d) for d in INPUTS[:n]]).hex() == ROOTS[n - 1]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"record {i}".encode()) for i in range(n)]


@pytest.mark.parametrize("n", range(1, 71))
def test_every_inclusion_proof_folds_back_to_the_root(n: int) -> None:
    leaves = _leaves(n)
    top = merkle.root(leaves)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        assert len(path) <= (n - 1).bit_length()
        assert merkle.root_from_path(leaves[i], i, n, path) == top


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13, 64, 100])
def test_all_paths_at_once_are_the_paths_one_by_one(n: int) -> None:
    leaves = _leaves(n)
    assert merkle.inclusion_paths(leaves) == [merkle.inclusion_path(i, leaves)
                                              for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 7, 8, 33])
def test_a_proof_fails_for_another_leaf_index_or_path(n: int) -> None:
    leaves = _leaves(n)
    top = merkle.root(leaves)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        other = merkle.leaf_hash(b"altered")
        assert merkle.root_from_path(other, i, n, path) != top
        assert merkle.root_from_path(leaves[i], (i + 1) % n, n, path) != top
        # (the size alone is not bound by the path: the batch event records it, and the
        # verifiers compare the proof's size with the event's)
        assert merkle.root_from_path(leaves[i], i, n, [*path, top]) != top
        if path:
            bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert merkle.root_from_path(leaves[i], i, n, bent) != top


def test_an_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(IndexError):
        merkle.inclusion_path(3, _leaves(3))
    assert merkle.root_from_path(_leaves(1)[0], 3, 3, []) is None


@given(st.lists(st.binary(max_size=12), min_size=1, max_size=40), st.data())
def test_changing_any_one_record_changes_the_root(records: list[bytes], data: st.DataObject
                                                  ) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    changed = [*records]
    changed[i] = records[i] + b"!"
    assert merkle.root([merkle.leaf_hash(r) for r in changed]) != \
        merkle.root([merkle.leaf_hash(r) for r in records])
