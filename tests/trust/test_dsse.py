"""DSSE v1 envelopes: PAE per the spec, strict parsing, threshold counting, tamper evidence.

Spec: https://github.com/secure-systems-lab/dsse (protocol.md, envelope.md). Signatures in
these tests are checked with ``cryptography`` over a PAE written out here from the spec, so a
wrong PAE in ``trust.dsse`` cannot verify itself.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from trust import dsse
from trust.errors import FormatError, SignatureError, ThresholdError
from trust.keys import KeyId, PublicKey, SigningKey

PT = "application/vnd.warden.test+json"
PAYLOAD = b'{"hello":"world"}'

A, B, C, X = (SigningKey.from_seed(bytes([n]) * 32) for n in (11, 12, 13, 99))
TRUSTED: dict[KeyId, PublicKey] = {k.key_id: k.public for k in (A, B, C)}

TAMPER_ERRORS = (SignatureError, ThresholdError, FormatError)


def spec_pae(payload_type: str, payload: bytes) -> bytes:
    """PAE from the DSSE protocol, spelled out independently of trust.dsse."""
    t = payload_type.encode("utf-8")
    return b" ".join([b"DSSEv1", str(len(t)).encode(), t, str(len(payload)).encode(), payload])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_dict(
    payload: bytes = PAYLOAD, payload_type: str = PT, signers: tuple[SigningKey, ...] = (A,)
) -> dict[str, Any]:
    """A hand-built envelope object (no trust.dsse involved)."""
    message = spec_pae(payload_type, payload)
    return {
        "payloadType": payload_type,
        "payload": b64(payload),
        "signatures": [{"keyid": k.key_id, "sig": b64(k.sign(message))} for k in signers],
    }


def parse(obj: dict[str, Any]) -> dsse.Envelope:
    return dsse.Envelope.from_json(json.dumps(obj).encode())


# --- PAE -----------------------------------------------------------------------------------


def test_pae_spec_worked_example() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("payload_type", "payload", "expected"),
    [
        ("", b"", b"DSSEv1 0  0 "),
        ("t", b"", b"DSSEv1 1 t 0 "),
        ("\u00fc", b"\x00\xff", b"DSSEv1 2 \xc3\xbc 2 \x00\xff"),  # lengths count UTF-8 bytes
        ("a b", b"1 2 3", b"DSSEv1 3 a b 5 1 2 3"),
    ],
)
def test_pae_lengths_are_byte_counts(payload_type: str, payload: bytes, expected: bytes) -> None:
    assert dsse.pae(payload_type, payload) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.binary(max_size=12), st.text(max_size=12), st.binary(max_size=12))
def test_pae_is_injective(t1: str, p1: bytes, t2: str, p2: bytes) -> None:
    assert dsse.pae(t1, p1) == spec_pae(t1, p1)
    if (t1, p1) != (t2, p2):
        assert dsse.pae(t1, p1) != dsse.pae(t2, p2)


# --- signing -------------------------------------------------------------------------------


def test_signatures_cover_the_spec_pae() -> None:
    env = dsse.sign(PT, PAYLOAD, [A, B])
    assert env.payload == PAYLOAD and env.payload_type == PT
    assert [s.keyid for s in env.signatures] == [A.key_id, B.key_id]
    for key, s in zip((A, B), env.signatures, strict=True):
        Ed25519PublicKey.from_public_bytes(key.public.raw).verify(s.sig, spec_pae(PT, PAYLOAD))


def test_wire_form_uses_the_spec_field_names_and_standard_base64() -> None:
    env = dsse.sign(PT, b"\xfb\xff\xfe payload", [A])
    obj = json.loads(env.to_json())
    assert set(obj) == {"payload", "payloadType", "signatures"}
    assert obj["payloadType"] == PT
    assert base64.b64decode(obj["payload"], validate=True) == b"\xfb\xff\xfe payload"
    assert "+" in obj["payload"] or "/" in obj["payload"]  # standard, not URL-safe, alphabet
    assert obj["signatures"] == [{"keyid": A.key_id, "sig": b64(env.signatures[0].sig)}]


def test_json_round_trip_and_raw_bytes_kept() -> None:
    env = dsse.sign(PT, PAYLOAD, [A, B, C])
    data = env.to_json()
    back = dsse.Envelope.from_json(data)
    assert back == env
    assert back.raw == data
    assert back.to_json() == data


def test_a_hand_built_envelope_verifies() -> None:
    env = parse(envelope_dict(signers=(A, B)))
    assert dsse.verify(env, TRUSTED, 2) == {A.key_id, B.key_id}


def test_add_signature_keeps_the_payload_and_ignores_a_repeat_signer() -> None:
    env = dsse.sign(PT, PAYLOAD, [A])
    env2 = dsse.add_signature(env, B)
    assert env2.payload == env.payload and env2.payload_type == env.payload_type
    assert env2.signatures[0] == env.signatures[0]
    assert dsse.add_signature(env2, A) == env2
    assert len(dsse.sign(PT, PAYLOAD, [A, A, B]).signatures) == 2


# --- verification: thresholds ---------------------------------------------------------------


def test_multi_key_signing_meets_a_threshold() -> None:
    env = dsse.sign(PT, PAYLOAD, [A, B, C])
    assert dsse.verify(env, TRUSTED, 3) == {A.key_id, B.key_id, C.key_id}
    assert dsse.verify(env, TRUSTED, 1) == {A.key_id, B.key_id, C.key_id}


def test_below_threshold_is_a_threshold_error() -> None:
    env = dsse.sign(PT, PAYLOAD, [A, B])
    assert dsse.verify(env, TRUSTED, 2) == {A.key_id, B.key_id}
    with pytest.raises(ThresholdError):
        dsse.verify(env, TRUSTED, 3)


def test_zero_signatures_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        dsse.verify(dsse.sign(PT, PAYLOAD, []), TRUSTED, 1)


def test_a_key_signing_twice_counts_once() -> None:
    obj = envelope_dict(signers=(A,))
    obj["signatures"] = obj["signatures"] * 2
    env = parse(obj)
    assert len(env.signatures) == 2
    with pytest.raises(ThresholdError):
        dsse.verify(env, TRUSTED, 2)
    assert dsse.verify(env, TRUSTED, 1) == {A.key_id}


def test_duplicate_plus_another_key_meets_two_but_not_three() -> None:
    obj = envelope_dict(signers=(A, B))
    obj["signatures"] = obj["signatures"] + [obj["signatures"][0]] * 3
    env = parse(obj)
    assert dsse.verify(env, TRUSTED, 2) == {A.key_id, B.key_id}
    with pytest.raises(ThresholdError):
        dsse.verify(env, TRUSTED, 3)


def test_an_invalid_signature_labelled_with_a_trusted_id_does_not_block_a_valid_one() -> None:
    obj = envelope_dict(signers=(A,))
    good = obj["signatures"][0]
    bad = {"keyid": A.key_id, "sig": b64(X.sign(spec_pae(PT, PAYLOAD)))}
    obj["signatures"] = [bad, good]
    assert dsse.verify(parse(obj), TRUSTED, 1) == {A.key_id}


def test_unknown_key_ids_are_ignored() -> None:
    env = dsse.sign(PT, PAYLOAD, [X, A])
    assert dsse.verify(env, TRUSTED, 1) == {A.key_id}
    with pytest.raises(ThresholdError):
        dsse.verify(env, TRUSTED, 2)  # X's valid signature is not counted


def test_only_unknown_signers_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        dsse.verify(dsse.sign(PT, PAYLOAD, [X]), TRUSTED, 1)


def test_signature_by_another_key_under_a_trusted_key_id() -> None:
    obj = envelope_dict(signers=(X,))
    obj["signatures"][0]["keyid"] = A.key_id
    with pytest.raises(SignatureError):
        dsse.verify(parse(obj), TRUSTED, 1)


def test_missing_keyid_is_treated_as_unknown() -> None:
    obj = envelope_dict(signers=(A,))
    del obj["signatures"][0]["keyid"]
    with pytest.raises(SignatureError):
        dsse.verify(parse(obj), TRUSTED, 1)


def test_wrong_payload_type_is_refused() -> None:
    env = dsse.sign(PT, PAYLOAD, [A])
    with pytest.raises(FormatError):
        dsse.verify(env, TRUSTED, 1, payload_type="application/vnd.warden.root+json")
    assert dsse.verify(env, TRUSTED, 1, payload_type=PT) == {A.key_id}


def test_relabelled_payload_type_breaks_the_signature() -> None:
    obj = envelope_dict(signers=(A,))
    obj["payloadType"] = "application/vnd.warden.other+json"
    with pytest.raises(SignatureError):
        dsse.verify(parse(obj), TRUSTED, 1)


def test_changed_payload_breaks_the_signature() -> None:
    obj = envelope_dict(signers=(A,))
    obj["payload"] = b64(b'{"hello":"World"}')
    with pytest.raises(SignatureError):
        dsse.verify(parse(obj), TRUSTED, 1)


@pytest.mark.parametrize("threshold", [0, -1])
def test_non_positive_threshold_never_passes(threshold: int) -> None:
    with pytest.raises(ThresholdError):
        dsse.verify(dsse.sign(PT, PAYLOAD, [A]), TRUSTED, threshold)


# --- strict parsing --------------------------------------------------------------------------


def _with(**changes: Any) -> dict[str, Any]:
    obj = envelope_dict()
    obj.update(changes)
    return obj


def _without(name: str) -> dict[str, Any]:
    obj = envelope_dict()
    del obj[name]
    return obj


def _sig_with(**changes: Any) -> dict[str, Any]:
    obj = envelope_dict()
    obj["signatures"][0].update(changes)
    return obj


def _sig_without(name: str) -> dict[str, Any]:
    obj = envelope_dict()
    del obj["signatures"][0][name]
    return obj


BAD_ENVELOPES: dict[str, tuple[dict[str, Any] | list[Any], str]] = {
    "payload-bad-chars": (_with(payload="!!not base64!!"), "payload"),
    "payload-bad-padding": (_with(payload="aGk"), "payload"),
    "payload-newline": (_with(payload="aGVs\nbG8="), "payload"),
    "payload-non-canonical": (_with(payload="aGl="), "non-canonical"),  # "aGk=" is canonical
    "payload-urlsafe": (_with(payload=b64(b"\xfb\xff").replace("+", "-").replace("/", "_")), ""),
    "payload-not-string": (_with(payload=123), "payload"),
    "missing-payload": (_without("payload"), "payload"),
    "missing-payloadType": (_without("payloadType"), "payloadType"),
    "missing-signatures": (_without("signatures"), "signatures"),
    "unknown-field": (_with(extra="x"), "extra"),
    "payloadType-not-string": (_with(payloadType=5), "payloadType"),
    "payloadType-empty": (_with(payloadType=""), "payloadType"),
    "signatures-not-list": (_with(signatures={"keyid": "a", "sig": ""}), "signatures"),
    "signature-not-object": (_with(signatures=["abc"]), "signatures[0]"),
    "signature-missing-sig": (_sig_without("sig"), "sig"),
    "signature-unknown-field": (_sig_with(cert="x"), "cert"),
    "signature-keyid-not-string": (_sig_with(keyid=7), "keyid"),
    "signature-bad-base64": (_sig_with(sig="@@@@"), "sig"),
    "signature-non-canonical": (_sig_with(sig="aGl="), "non-canonical"),
    "not-an-object": ([1, 2, 3], ""),
}


@pytest.mark.parametrize("name", sorted(BAD_ENVELOPES))
def test_malformed_envelope_is_a_format_error(name: str) -> None:
    obj, fragment = BAD_ENVELOPES[name]
    with pytest.raises(FormatError) as info:
        dsse.Envelope.from_json(json.dumps(obj).encode(), what="bundle.dsse")
    assert "bundle.dsse" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "data", [b"", b"{", b"not json", b"\xff\xfe\x00", b"null", b'"string"'], ids=repr
)
def test_non_json_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        dsse.Envelope.from_json(data)


@pytest.mark.parametrize("field", ["payload", "payloadType", "signatures", "keyid", "sig"])
def test_duplicated_json_keys_are_refused(field: str) -> None:
    good = dsse.sign(PT, PAYLOAD, [A]).to_json().decode()
    first = {
        "payload": f'"payload":"{b64(b"evil")}",',
        "payloadType": '"payloadType":"text/plain",',
        "signatures": '"signatures":[],',
        "keyid": f'"keyid":"{X.key_id}",',
        "sig": f'"sig":"{b64(bytes(64))}",',
    }[field]
    key = f'"{field}":'
    i = good.index(key)
    data = good[:i] + first + good[i:]
    json.loads(data)  # still JSON to a lenient parser
    with pytest.raises(FormatError):
        dsse.Envelope.from_json(data.encode())


# --- tamper evidence (property) -------------------------------------------------------------

ENV_ONE = dsse.sign(PT, PAYLOAD, [A]).to_json()
ENV_TWO = dsse.sign(PT, PAYLOAD, [A, B]).to_json()


def _flip(data: bytes, index: int, mask: int) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def _verify_bytes(data: bytes, threshold: int) -> frozenset[KeyId]:
    return dsse.verify(dsse.Envelope.from_json(data), TRUSTED, threshold, payload_type=PT)


def test_untampered_envelopes_verify() -> None:
    assert _verify_bytes(ENV_ONE, 1) == {A.key_id}
    assert _verify_bytes(ENV_TWO, 2) == {A.key_id, B.key_id}


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80, 0xFF])
@pytest.mark.parametrize(("data", "threshold"), [(ENV_ONE, 1), (ENV_TWO, 2)], ids=["1of1", "2of2"])
def test_every_single_byte_flip_is_detected(data: bytes, threshold: int, mask: int) -> None:
    passed = []
    for i in range(len(data)):
        try:
            _verify_bytes(_flip(data, i, mask), threshold)
        except TAMPER_ERRORS:
            continue
        passed.append(i)
    assert not passed, f"tampered bytes at offsets {passed} still verify"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_flip_fails_with_a_warden_error(data: st.DataObject) -> None:
    which = data.draw(st.sampled_from([(ENV_ONE, 1), (ENV_TWO, 2)]))
    raw, threshold = which
    index = data.draw(st.integers(0, len(raw) - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(TAMPER_ERRORS):
        _verify_bytes(_flip(raw, index, mask), threshold)
