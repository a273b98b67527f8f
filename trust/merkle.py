"""RFC 9162 Merkle trees: hashes, inclusion and consistency proofs, and their verification.

This module is a contract that auditors and other tools rely on. It follows RFC 9162 §2.1
(same tree as RFC 6962): ``leaf = SHA-256(0x00 ‖ data)``, ``node = SHA-256(0x01 ‖ l ‖ r)``,
the left subtree of an ``n``-leaf tree holds the largest power of two strictly below ``n``,
and the empty tree's root is ``SHA-256("")``.

Invariants:

* Every algorithm is iterative; tree size is bounded only by memory, never by recursion depth.
* ``verify_inclusion`` and ``verify_consistency`` return ``None`` or raise :class:`ProofError`
  (a :class:`TrustError`); there is no boolean to forget to read. Proof elements must be
  32-byte hashes, so must a leaf hash, and a proof must have exactly the length its sizes
  imply. Given roots are compared as given: one of the wrong length never equals a computed hash,
  and the vectors accept "size n to size n, same root, empty proof" whatever the root's length.
* A consistency proof from the empty tree (``old_size == 0``) is refused. RFC 9162 leaves it
  undefined (every tree trivially extends the empty one, so such a proof proves nothing);
  transparency-dev/merkle rejects it too, and a verifier that wants "size 0 is consistent with
  anything" should decide that without calling this function.

Incremental trees. A *perfect subtree* ``(level, index)`` covers leaves
``[index·2^level, (index+1)·2^level)``; once all its leaves exist its hash never changes.
Every node of every RFC 9162 tree is either a perfect subtree or a right-edge node whose hash
folds a few perfect subtrees (:func:`range_nodes`). So a store that keeps the perfect-subtree
hashes appends in O(log n) (:func:`extend`) and answers any proof for any past size by
reading O(log n) rows (:func:`inclusion_plan`, :func:`consistency_plan`, :func:`resolve`).
The in-memory functions above use the same plans, so the golden vectors test both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence

from trust.errors import ProofError, UsageError

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "TreeNode",
    "leaf_hash",
    "node_hash",
    "root",
    "inclusion_proof",
    "consistency_proof",
    "verify_inclusion",
    "verify_consistency",
    "range_nodes",
    "frontier_nodes",
    "root_plan",
    "inclusion_plan",
    "consistency_plan",
    "resolve",
    "fold",
    "extend",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

TreeNode = tuple[int, int]
"""A perfect subtree ``(level, index)``: leaves ``[index << level, (index + 1) << level)``.

(Not a node of the federation: those are :data:`trust.stream.NodeId`.)"""

Plan = list[list[TreeNode]]
"""One list of perfect subtrees per proof element, folded right to left by :func:`fold`."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- plans over perfect subtrees -------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[TreeNode]:
    """The perfect subtrees whose fold is MTH(D[start:end]), left to right.

    ``[start, end)`` must be a node of some RFC 9162 tree: ``start`` a multiple of a power of
    two at least ``end - start``. The range then splits, largest power of two first, into
    aligned perfect subtrees, which is exactly how RFC 9162 splits a right-edge node.
    """
    if not 0 <= start < end:
        raise UsageError(f"empty or negative leaf range [{start}, {end})")
    nodes: list[TreeNode] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos & ((1 << level) - 1):
            raise UsageError(f"leaf range [{start}, {end}) is not a node of a Merkle tree")
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


def frontier_nodes(size: int) -> list[TreeNode]:
    """The perfect subtrees that make up a tree of ``size`` leaves, left to right."""
    return range_nodes(0, size) if size else []


def root_plan(size: int) -> Plan:
    """A one-element plan whose fold is the root of the first ``size`` leaves."""
    return [frontier_nodes(size)] if size else []


def inclusion_plan(index: int, size: int) -> Plan:
    """RFC 9162 §2.1.3.1 ``PATH(index, D[0:size])`` as perfect-subtree lists, leaf first."""
    if not 0 <= index < size:
        raise UsageError(f"leaf index {index} is outside a tree of size {size}")
    top_down: Plan = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            top_down.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_nodes(lo, lo + k))
            lo, m = lo + k, m - k
    top_down.reverse()
    return top_down


def consistency_plan(old_size: int, new_size: int) -> Plan:
    """RFC 9162 §2.1.4.1 ``PROOF(old_size, D[0:new_size])`` as perfect-subtree lists."""
    if not 0 < old_size <= new_size:
        raise UsageError(
            f"no consistency proof from size {old_size} to size {new_size}"
            " (sizes must satisfy 0 < old ≤ new)"
        )
    top_down: Plan = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            top_down.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(range_nodes(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        top_down.append(range_nodes(lo, hi))
    top_down.reverse()
    return top_down


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of consecutive perfect subtrees (largest first) right to left."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def resolve(plan: Plan, get: Mapping[TreeNode, bytes] | Callable[[TreeNode], bytes]) -> list[bytes]:
    """Turn a plan into hashes, looking each perfect subtree up in ``get``."""
    lookup = get.__getitem__ if isinstance(get, Mapping) else get
    return [fold([lookup(node) for node in element]) for element in plan]


def extend(
    size: int, frontier: Sequence[bytes], new_leaves: Iterable[bytes]
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append leaves to a tree known only by its frontier.

    ``frontier`` holds the hashes of :func:`frontier_nodes(size)`. Returns the new frontier and
    every perfect subtree completed on the way as ``(level, index, hash)`` (the leaves
    themselves included at level 0): O(1) amortised, O(log n) worst case, per leaf.
    """
    nodes = frontier_nodes(size)
    if len(nodes) != len(frontier):
        raise UsageError(
            f"a tree of size {size} has {len(nodes)} frontier hashes, not {len(frontier)}"
        )
    stack = [(lv, ix, h) for (lv, ix), h in zip(nodes, frontier, strict=True)]
    created: list[tuple[int, int, bytes]] = []
    for leaf in new_leaves:
        level, index, h = 0, size, leaf
        created.append((level, index, h))
        # A new right child completes its parent whenever its left sibling is on the stack.
        while index & 1:
            _, _, left = stack.pop()
            level, index, h = level + 1, index >> 1, node_hash(left, h)
            created.append((level, index, h))
        stack.append((level, index, h))
        size += 1
    return [h for _, _, h in stack], created


# --- in-memory trees --------------------------------------------------------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` over already-hashed leaves; :data:`EMPTY_ROOT` for no leaves."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    # Pairing level by level and promoting a lone last node builds exactly the RFC tree.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _perfect_levels(leaf_hashes: Sequence[bytes]) -> Callable[[TreeNode], bytes]:
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return lambda node: levels[node[0]][node[1]]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``leaf_hashes``."""
    plan = inclusion_plan(index, len(leaf_hashes))
    return resolve(plan, _perfect_levels(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the first ``old_size`` leaves to all of them."""
    plan = consistency_plan(old_size, len(leaf_hashes))
    return resolve(plan, _perfect_levels(leaf_hashes))


# --- verification ------------------------------------------------------------------------------


def _check_hash(h: object, what: str) -> bytes:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        size = len(h) if isinstance(h, bytes | bytearray) else type(h).__name__
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte hash, got {size}")
    return bytes(h)


def _check_bytes(h: object, what: str) -> bytes:
    if not isinstance(h, bytes | bytearray):
        raise ProofError(f"{what} must be bytes, got {type(h).__name__}")
    return bytes(h)


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree with ``root`` (RFC 9162 §2.1.3.2).

    Raises :class:`ProofError` on any mismatch, including a proof of the wrong length.
    """
    index = _check_int(index, "leaf index")
    tree_size = _check_int(tree_size, "tree size")
    if index >= tree_size:
        raise ProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    r = _check_hash(leaf_hash, "leaf hash")
    expected_root = _check_bytes(root, "root hash")
    fn, sn = index, tree_size - 1
    for i, p in enumerate(proof):
        p = _check_hash(p, f"inclusion proof element {i}")
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} elements; too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} elements; too short")
    if not hmac.compare_digest(r, expected_root):
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of size {tree_size}"
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree with ``new_root`` extends the one with ``old_root`` (RFC 9162 §2.1.4.2).

    Raises :class:`ProofError` on any mismatch. ``old_size == 0`` is refused (see module notes).
    """
    old_size = _check_int(old_size, "old tree size")
    new_size = _check_int(new_size, "new tree size")
    old_root = _check_bytes(old_root, "old root hash")
    new_root = _check_bytes(new_root, "new root hash")
    path = [_check_hash(p, f"consistency proof element {i}") for i, p in enumerate(proof)]
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing; refused")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size == new_size:
        if path:
            raise ProofError("trees of equal size need an empty consistency proof")
        if not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if not path:
        raise ProofError(f"empty consistency proof from size {old_size} to {new_size}")
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof has {len(proof)} elements; too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof has {len(proof)} elements; too short")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(f"consistency proof does not lead to the old root of size {old_size}")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(f"consistency proof does not lead to the new root of size {new_size}")
