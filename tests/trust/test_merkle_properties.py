"""Property tests: every proof of a random tree verifies, and any tampering is detected.

The reference is a direct transcription of RFC 9162's recursive definitions (MTH, PATH,
PROOF), kept here so the iterative implementation is compared against the text of the RFC.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust import merkle
from trust.errors import ProofError, UsageError


def _rfc_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return merkle.node_hash(_rfc_mth(d[:k]), _rfc_mth(d[k:]))


def _rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return _rfc_path(m, d[:k]) + [_rfc_mth(d[k:])]
    return _rfc_path(m - k, d[k:]) + [_rfc_mth(d[:k])]


def _rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [_rfc_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return _rfc_subproof(m, d[:k], b) + [_rfc_mth(d[k:])]
    return _rfc_subproof(m - k, d[k:], False) + [_rfc_mth(d[:k])]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


sizes = st.integers(min_value=1, max_value=300)


def _shape(index: int, size: int) -> list[bool] | None:
    """The left/right combination steps RFC 9162 verification takes, or None if invalid."""
    if not 0 <= index < size:
        return None
    steps, fn, sn = [], index, size - 1
    while sn:
        if fn & 1 or fn == sn:
            steps.append(True)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            steps.append(False)
        fn >>= 1
        sn >>= 1
    return steps


@given(n=sizes, data=st.data())
def test_inclusion_matches_rfc_and_verifies(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    i = data.draw(st.integers(0, n - 1))
    r = merkle.root(leaves)
    assert r == _rfc_mth(leaves)
    proof = merkle.inclusion_proof(leaves, i)
    assert proof == _rfc_path(i, leaves)
    merkle.verify_inclusion(leaves[i], i, n, proof, r)


@given(n=sizes, data=st.data())
def test_consistency_matches_rfc_and_verifies(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(leaves, m)
    assert proof == _rfc_subproof(m, leaves, True)
    merkle.verify_consistency(m, n, proof, merkle.root(leaves[:m]), merkle.root(leaves))


def _flip(b: bytes, pos: int) -> bytes:
    pos %= len(b) * 8
    arr = bytearray(b)
    arr[pos // 8] ^= 1 << (pos % 8)
    return bytes(arr)


@given(n=sizes, data=st.data())
def test_tampered_inclusion_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    i = data.draw(st.integers(0, n - 1))
    r = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, i)
    how = data.draw(st.sampled_from(["leaf", "root", "proof", "index", "size", "drop", "extra"]))
    bit = data.draw(st.integers(0, 255))
    leaf, index, size = leaves[i], i, n
    if how == "leaf":
        leaf = _flip(leaf, bit)
    elif how == "root":
        r = _flip(r, bit)
    elif how == "proof" and proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        proof[j] = _flip(proof[j], bit)
    elif how == "index":
        index = data.draw(st.integers(0, n).filter(lambda x: x != i))
    elif how == "size":
        size = data.draw(st.integers(0, 2 * n + 2).filter(lambda x: x != n))
    elif how == "drop" and proof:
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    elif how == "extra":
        proof.insert(data.draw(st.integers(0, len(proof))), merkle.leaf_hash(b"x"))
    else:
        return  # nothing to tamper with in a one-leaf proof
    if how == "index" and index < n and leaves[index] == leaf:
        return
    if how == "size" and _shape(index, size) == _shape(i, n):
        return  # same hashing steps: a proof alone cannot bind the size, only the root does
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, r)


@given(n=st.integers(2, 300), data=st.data())
def test_tampered_consistency_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n - 1))
    old, new = merkle.root(leaves[:m]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, m)
    how = data.draw(st.sampled_from(["old", "new", "proof", "drop", "extra", "swap"]))
    bit = data.draw(st.integers(0, 255))
    if how == "old":
        old = _flip(old, bit)
    elif how == "new":
        new = _flip(new, bit)
    elif how == "proof":
        j = data.draw(st.integers(0, len(proof) - 1))
        proof[j] = _flip(proof[j], bit)
    elif how == "drop":
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    elif how == "extra":
        proof.insert(data.draw(st.integers(0, len(proof))), merkle.leaf_hash(b"x"))
    else:
        old, new = new, old
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, proof, old, new)


@given(
    chunks=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    data=st.data(),
)
def test_incremental_extend_matches_full_tree(chunks: list[int], data: st.DataObject) -> None:
    """Appending in batches through the frontier stores every perfect subtree correctly."""
    store: dict[merkle.TreeNode, bytes] = {}
    frontier: list[bytes] = []
    size = 0
    for c in chunks:
        new = _leaves(size + c)[size:]
        frontier, created = merkle.extend(size, frontier, new)
        for level, index, h in created:
            assert (level, index) not in store  # perfect subtrees are written once
            store[(level, index)] = h
        size += c
        leaves = _leaves(size)
        want_root = [merkle.root(leaves)] if size else []
        assert merkle.resolve(merkle.root_plan(size), store) == want_root
        if size:
            i = data.draw(st.integers(0, size - 1))
            assert merkle.resolve(merkle.inclusion_plan(i, size), store) == merkle.inclusion_proof(
                leaves, i
            )
            m = data.draw(st.integers(1, size))
            assert merkle.resolve(merkle.consistency_plan(m, size), store) == (
                merkle.consistency_proof(leaves, m)
            )


def test_bad_arguments() -> None:
    leaves = _leaves(4)
    with pytest.raises(UsageError):
        merkle.inclusion_proof(leaves, 4)
    with pytest.raises(UsageError):
        merkle.consistency_proof(leaves, 0)
    with pytest.raises(UsageError):
        merkle.consistency_proof(leaves, 5)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[0], -1, 4, [], merkle.root(leaves))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[0][:31], 0, 1, [], leaves[0][:31])


def test_large_tree_is_iterative() -> None:
    """A 2^20-leaf plan is computed without recursion and has log-sized proofs."""
    n = (1 << 20) + 12345
    plan = merkle.inclusion_plan(n - 1, n)
    assert sum(len(p) for p in plan) <= 2 * 21
    plan = merkle.consistency_plan(777_777, n)
    assert sum(len(p) for p in plan) <= 3 * 21
