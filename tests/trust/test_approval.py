"""Approval records (trust.approval): verified against the trust root's approver roles."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from trust import dsse
from trust.approval import APPROVAL_PAYLOAD_TYPE, APPROVAL_SCHEMA, Approval, build_approval
from trust.canonical import canonical_json, sha256_hex
from trust.errors import FormatError, SignatureError, ThresholdError, TrustError
from trust.keys import SigningKey
from trust.root import Role, RootMetadata, TrustRoot

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)


def _key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


ROOT_KEY, RISK_1, RISK_2, CFO, OUTSIDER, POLICY, HUB = (_key(i) for i in range(1, 8))


@pytest.fixture(scope="module")
def root() -> TrustRoot:
    """Root with approver:risk_officer 2-of-2 and approver:cfo 1-of-1."""
    keys = {k.key_id: k.public for k in (ROOT_KEY, RISK_1, RISK_2, CFO, POLICY, HUB)}
    meta = RootMetadata(
        version=1,
        expires=NOW + timedelta(days=365),
        keys=keys,
        roles={
            "root": Role((ROOT_KEY.key_id,), 1),
            "policy": Role((POLICY.key_id,), 1),
            "hub": Role((HUB.key_id,), 1),
            "approver:risk_officer": Role((RISK_1.key_id, RISK_2.key_id), 2),
            "approver:cfo": Role((CFO.key_id,), 1),
        },
    )
    return TrustRoot.from_envelope(meta.envelope([ROOT_KEY]).to_json(), now=NOW)


def _payload(**fields: object) -> bytes:
    obj: dict[str, object] = {"schema": APPROVAL_SCHEMA, "role": "cfo", "subject": "credit:7",
                              "decision": "approve", "time": "2026-11-26T11:00:00Z"}
    obj.update(fields)
    return canonical_json({k: v for k, v in obj.items() if v is not None})


def _sign(payload: bytes, *keys: SigningKey, payload_type: str = APPROVAL_PAYLOAD_TYPE) -> bytes:
    return dsse.sign(payload_type, payload, keys).to_json()


def test_valid_approval_round_trip(root: TrustRoot) -> None:
    payload = build_approval(role="cfo", subject="credit:7", decision="approve",
                             time="2026-11-26T11:00:00Z", reason="reviewed")
    data = _sign(payload, CFO)
    a = Approval.from_envelope(data, root)
    assert (a.role, a.subject, a.decision, a.reason) == ("cfo", "credit:7", "approve", "reviewed")
    assert a.time == NOW
    assert a.digest == sha256_hex(data)
    assert a.envelope == data
    assert a.signers == frozenset({CFO.key_id})


def test_threshold_role_needs_every_signature(root: TrustRoot) -> None:
    payload = _payload(role="risk_officer", decision="reject")
    with pytest.raises(ThresholdError):
        Approval.from_envelope(_sign(payload, RISK_1), root)
    a = Approval.from_envelope(_sign(payload, RISK_1, RISK_2), root)
    assert a.decision == "reject"
    assert a.signers == frozenset({RISK_1.key_id, RISK_2.key_id})


def test_build_approval_omits_empty_reason() -> None:
    payload = build_approval(role="cfo", subject="s", decision="approve",
                             time="2026-11-26T11:00:00Z")
    assert "reason" not in json.loads(payload)


BAD: dict[str, tuple[Callable[[], bytes], type[Exception]]] = {
    "signed by a key outside the role": (lambda: _sign(_payload(), OUTSIDER), SignatureError),
    # The payload names the role whose threshold must sign: cfo cannot approve as risk_officer.
    "borrowing another role": (lambda: _sign(_payload(role="risk_officer"), CFO), SignatureError),
    "role not in the root": (lambda: _sign(_payload(role="ceo"), CFO), TrustError),
    "empty role": (lambda: _sign(_payload(role=""), CFO), FormatError),
    "wrong payload type": (
        lambda: _sign(_payload(), CFO, payload_type="application/vnd.warden.audit+json"),
        FormatError,
    ),
    "unknown field": (lambda: _sign(_payload(extra=1), CFO), FormatError),
    "missing time": (lambda: _sign(_payload(time=None), CFO), FormatError),
    "wrong schema": (lambda: _sign(_payload(schema="warden.approval/v0"), CFO), FormatError),
    "empty subject": (lambda: _sign(_payload(subject=""), CFO), FormatError),
    "decision neither approve nor reject": (
        lambda: _sign(_payload(decision="maybe"), CFO), FormatError),
    "reason not a string": (lambda: _sign(_payload(reason=3), CFO), FormatError),
    "bad time": (lambda: _sign(_payload(time="yesterday"), CFO), FormatError),
    "non-canonical payload (whitespace)": (
        lambda: _sign(_payload().replace(b",", b", "), CFO), FormatError),
    "duplicate key in payload": (
        lambda: _sign(_payload()[:-1] + b',"role":"cfo"}', CFO), FormatError),
    "not an envelope": (lambda: b"[]", FormatError),
    "not JSON": (lambda: b"\xff", FormatError),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_approvals_are_refused(root: TrustRoot, case: str) -> None:
    make, error = BAD[case]
    with pytest.raises(error):
        Approval.from_envelope(make(), root)


def test_any_tampered_payload_byte_is_detected(root: TrustRoot) -> None:
    env = dsse.Envelope.from_json(_sign(_payload(), CFO))
    for i in range(len(env.payload)):
        tampered = bytearray(env.payload)
        tampered[i] ^= 0x01
        forged = dsse.Envelope(env.payload_type, bytes(tampered), env.signatures).to_json()
        with pytest.raises((SignatureError, FormatError, TrustError)):
            Approval.from_envelope(forged, root)
