"""Golden vectors: fixed keys and fixed times must keep producing the committed bytes.

The generator (``golden/generate.py``) is run in memory and compared byte for byte with the
committed files. The committed files are also checked *without Warden's code* — plain ``json``,
``base64``, ``hashlib`` and ``cryptography`` — so they document the wire format an outside
verifier would implement: DSSE v1 PAE, standard base64, key id = SHA-256 of the raw key.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trust import dsse
from trust.root import ROOT_PAYLOAD_TYPE, TrustRoot

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = "if the change is intended, run: .venv/bin/python tests/trust/golden/generate.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("warden_golden_generate", GOLDEN / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
FILES = sorted(gen.build())


@pytest.mark.parametrize("name", FILES)
def test_regenerated_bytes_equal_committed_file(name: str) -> None:
    committed = GOLDEN / name
    assert committed.exists(), f"{committed} is missing; {REGENERATE}"
    assert gen.build()[name] == committed.read_bytes(), f"{name} changed; {REGENERATE}"


def test_generator_is_deterministic() -> None:
    assert gen.build() == gen.build()


def test_committed_set_is_complete() -> None:
    on_disk = {p.name for p in GOLDEN.glob("*.json")}
    assert on_disk == set(FILES), "stale or missing golden files"


# --- independent checks: no Warden code below this line except where named --------------------


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE written out from the spec, independent of trust.dsse."""
    t = payload_type.encode("utf-8")
    return (
        b"DSSEv1 "
        + str(len(t)).encode()
        + b" "
        + t
        + b" "
        + str(len(payload)).encode()
        + (b" " + payload)
    )


def _keys_doc() -> dict[str, dict[str, object]]:
    doc: dict[str, dict[str, object]] = json.loads((GOLDEN / "keys.json").read_bytes())
    return doc


def _public_by_id() -> dict[str, bytes]:
    return {str(v["key_id"]): base64.b64decode(str(v["public"])) for v in _keys_doc().values()}


def _signers(name: str) -> set[str]:
    """Key ids whose signature on golden envelope ``name`` verifies (outside verifier)."""
    env = json.loads((GOLDEN / name).read_bytes())
    assert set(env) == {"payload", "payloadType", "signatures"}
    payload = base64.b64decode(env["payload"], validate=True)
    message = _pae(env["payloadType"], payload)
    pubs = _public_by_id()
    ok = set()
    for s in env["signatures"]:
        assert set(s) == {"keyid", "sig"}
        raw = pubs[s["keyid"]]
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(s["sig"]), message)
        ok.add(s["keyid"])
    return ok


def test_golden_key_ids_are_sha256_of_raw_public_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for name, entry in _keys_doc().items():
        seed = bytes([int(str(entry["seed_byte"]))]) * 32
        raw = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        assert base64.b64decode(str(entry["public"])) == raw, name
        assert entry["key_id"] == hashlib.sha256(raw).hexdigest(), name


def test_golden_envelope_verifies_with_an_outside_dsse_verifier() -> None:
    ids = {n: str(e["key_id"]) for n, e in _keys_doc().items()}
    assert _signers("envelope-2sig.json") == {ids["o1"], ids["o2"]}
    env = json.loads((GOLDEN / "envelope-2sig.json").read_bytes())
    payload = base64.b64decode(env["payload"])
    assert env["payloadType"] == gen.TEST_PAYLOAD_TYPE
    assert payload == rfc8785.dumps(gen.TEST_PAYLOAD)


def test_golden_roots_are_canonical_json_signed_by_the_right_officers() -> None:
    ids = {n: str(e["key_id"]) for n, e in _keys_doc().items()}
    assert _signers("root-v1.json") == {ids["r1"], ids["r2"]}
    assert _signers("root-v2.json") == {ids["r1"], ids["r2"], ids["r3"]}
    for name, version in (("root-v1.json", 1), ("root-v2.json", 2)):
        env = json.loads((GOLDEN / name).read_bytes())
        assert env["payloadType"] == ROOT_PAYLOAD_TYPE
        payload = base64.b64decode(env["payload"])
        body = json.loads(payload)
        assert rfc8785.dumps(body) == payload, f"{name}: payload is not RFC 8785 canonical"
        assert body["schema"] == "warden.root/v1"
        assert body["version"] == version
        for kid, entry in body["keys"].items():
            assert entry["keytype"] == "ed25519"
            assert hashlib.sha256(base64.b64decode(entry["public"])).hexdigest() == kid


def test_golden_roots_are_accepted_by_warden() -> None:
    v1 = (GOLDEN / "root-v1.json").read_bytes()
    v2 = (GOLDEN / "root-v2.json").read_bytes()
    root1 = TrustRoot.from_envelope(v1, now=gen.VERIFY_AT)
    root2 = root1.rotate(v2, now=gen.VERIFY_AT)
    assert (root1.version, root2.version) == (1, 2)
    assert root2.expires == gen.V2_EXPIRES
    assert root2.approver_roles() == ("risk_officer",)
    # the golden 2-signature envelope meets the policy role's threshold of 2 in both roots
    env = dsse.Envelope.from_json((GOLDEN / "envelope-2sig.json").read_bytes())
    k = gen.named_keys()
    assert root2.verify_role(env, "policy") == {k["o1"].key_id, k["o2"].key_id}


def test_parsing_and_reserialising_golden_envelopes_is_lossless() -> None:
    for name in ("root-v1.json", "root-v2.json", "envelope-2sig.json"):
        data = (GOLDEN / name).read_bytes()
        assert dsse.Envelope.from_json(data).to_json() + b"\n" == data, name
