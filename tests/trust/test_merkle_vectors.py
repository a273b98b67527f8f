"""RFC 9162 Merkle trees against the public vectors in ../shared/vectors/merkle/.

Both the transcribed ``merkle_vectors.json`` and the original transparency-dev testdata files
are read at test time: every happy path must verify and every corrupted probe must fail.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from trust import merkle
from trust.errors import ProofError, TrustError


@pytest.fixture(scope="module")
def vectors(shared_vectors: Path) -> dict[str, Any]:
    path = shared_vectors / "merkle" / "merkle_vectors.json"
    if not path.is_file():
        pytest.skip(f"Merkle vectors not found at {path}")
    return json.loads(path.read_text())


def _h(x: str | None) -> bytes:
    return bytes.fromhex(x or "")


def _leaves(vectors: dict[str, Any]) -> list[bytes]:
    return [merkle.leaf_hash(_h(x)) for x in vectors["leaves"]]


def test_empty_root(vectors: dict[str, Any]) -> None:
    assert merkle.root([]) == _h(vectors["empty_root"]) == merkle.EMPTY_ROOT


def test_node_hashes_by_level(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    for level, hashes in enumerate(vectors["node_hashes_by_level"]):
        for index, want in enumerate(hashes):
            start, end = index << level, (index + 1) << level
            assert merkle.root(leaves[start:end]) == _h(want), (level, index)


def test_roots_for_every_size(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    assert len(vectors["roots"]) == 9
    for item in vectors["roots"]:
        n = item["tree_size"]
        assert merkle.root(leaves[:n]) == _h(item["root"]), n


def test_inclusion_proofs_generated_and_verified(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    roots = {r["tree_size"]: _h(r["root"]) for r in vectors["roots"]}
    for item in vectors["inclusion_proofs"]:
        i, n = item["leaf_index"], item["tree_size"]
        want = [_h(p) for p in item["proof"]]
        assert merkle.inclusion_proof(leaves[:n], i) == want, (i, n)
        merkle.verify_inclusion(leaves[i], i, n, want, roots[n])


def test_consistency_proofs_generated_and_verified(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    roots = {r["tree_size"]: _h(r["root"]) for r in vectors["roots"]}
    for item in vectors["consistency_proofs"]:
        m, n = item["size1"], item["size2"]
        want = [_h(p) for p in item["proof"]]
        assert merkle.consistency_proof(leaves[:n], m) == want, (m, n)
        merkle.verify_consistency(m, n, want, roots[m], roots[n])


def test_every_proof_of_the_eight_leaf_tree(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    for n in range(1, 9):
        r = merkle.root(leaves[:n])
        for i in range(n):
            merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(leaves[:n], i), r)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(leaves[:n], m)
            merkle.verify_consistency(m, n, proof, merkle.root(leaves[:m]), r)


def test_rfc6962_symbolic_example(vectors: dict[str, Any]) -> None:
    example = vectors["rfc6962_section_2_1_3"]
    leaves = _leaves(vectors)[:7]
    label = {k: merkle.root(leaves[a:b]) for k, (a, b) in example["nodes"].items()}
    for item in example["inclusion"]:
        got = merkle.inclusion_proof(leaves, item["leaf_index"])
        assert got == [label[x] for x in item["path"]]
    for item in example["consistency"]:
        got = merkle.consistency_proof(leaves[: item["size2"]], item["size1"])
        assert got == [label[x] for x in item["proof"]]


def _run_inclusion_probe(p: dict[str, Any]) -> None:
    merkle.verify_inclusion(
        _h(p["leaf_hash"]), p["leaf_index"], p["tree_size"],
        [_h(x) for x in p["proof"] or []], _h(p["root"]),
    )


def _run_consistency_probe(p: dict[str, Any]) -> None:
    merkle.verify_consistency(
        p["size1"], p["size2"], [_h(x) for x in p["proof"] or []], _h(p["root1"]), _h(p["root2"])
    )


def test_inclusion_probes(vectors: dict[str, Any]) -> None:
    probes = vectors["inclusion_probes"]
    assert len(probes) == 98
    for p in probes:
        if p["want_error"]:
            with pytest.raises(ProofError):
                _run_inclusion_probe(p)
        else:
            _run_inclusion_probe(p)


def test_consistency_probes(vectors: dict[str, Any]) -> None:
    probes = vectors["consistency_probes"]
    assert len(probes) == 98
    for p in probes:
        if p["want_error"]:
            with pytest.raises(ProofError):
                _run_consistency_probe(p)
        else:
            _run_consistency_probe(p)


def _b64(x: str | None) -> bytes:
    return base64.b64decode(x) if x else b""


def _testdata_files(root: Path, kind: str) -> list[Path]:
    folder = root / "merkle" / "transparency-dev-testdata" / kind
    if not folder.is_dir():
        pytest.skip(f"transparency-dev testdata not found at {folder}")
    return sorted(folder.rglob("*.json"))


def test_transparency_dev_inclusion_testdata(shared_vectors: Path) -> None:
    files = _testdata_files(shared_vectors, "inclusion")
    assert files
    for f in files:
        p = json.loads(f.read_text())
        args = (
            _b64(p["leafHash"]), p["leafIdx"], p["treeSize"],
            [_b64(x) for x in p["proof"] or []], _b64(p["root"]),
        )
        if p["wantErr"]:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(*args)
        else:
            merkle.verify_inclusion(*args)


def test_transparency_dev_consistency_testdata(shared_vectors: Path) -> None:
    files = _testdata_files(shared_vectors, "consistency")
    assert files
    for f in files:
        p = json.loads(f.read_text())
        args = (
            p["size1"], p["size2"], [_b64(x) for x in p["proof"] or []],
            _b64(p["root1"]), _b64(p["root2"]),
        )
        if p["wantErr"]:
            with pytest.raises(ProofError):
                merkle.verify_consistency(*args)
        else:
            merkle.verify_consistency(*args)


def test_proof_error_is_a_trust_error() -> None:
    assert issubclass(ProofError, TrustError)
