"""Audit records and hub events: they verify themselves when built, and refuse bad input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust import dsse, keys
from trust.canonical import canonical_json
from trust.errors import FormatError, SignatureError, WardenError
from trust.record import (
    AUDIT_PAYLOAD_TYPE,
    GENESIS_PREV,
    HUB_EVENT_PAYLOAD_TYPE,
    AuditRecord,
    Decision,
    EventType,
    HubEvent,
    HubEventKind,
    PolicyRef,
    Subject,
    build_hub_event,
    build_record,
    envelope_digest,
    rotation_message,
    sign_hub_event,
    sign_record,
)

T = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)
NODE_KEY = keys.SigningKey.from_seed(b"\x01" * 32)
HUB_KEY = keys.SigningKey.from_seed(b"\x02" * 32)
SUBJECT = Subject("credit", "7", "ab" * 32)
POLICY = PolicyRef("lending", 3, "cd" * 32)


def _payload(**over: Any) -> dict[str, Any]:
    obj = json.loads(
        build_record(
            node_id="emea-1", seq=2, prev="ef" * 32, time=T, event=EventType.BLOCK,
            subject=SUBJECT, policy=POLICY,
            decision=Decision(False, ("auc below 0.8", {"rule": "fairness", "gap": 0.12})),
            evidence={"auc": 0.75, "groups": {"a": 10, "b": 12}},
        )
    )
    for k, v in over.items():
        if v is _DROP:
            del obj[k]
        else:
            obj[k] = v
    return obj


_DROP = object()


def _sign(obj: Any, key: keys.SigningKey = NODE_KEY, ptype: str = AUDIT_PAYLOAD_TYPE) -> bytes:
    return dsse.sign(ptype, canonical_json(obj), [key]).to_json()


def test_round_trip() -> None:
    env = sign_record(canonical_json(_payload()), NODE_KEY)
    rec = AuditRecord.from_envelope(env, NODE_KEY.public)
    assert (rec.node_id, rec.seq, rec.prev, rec.time) == ("emea-1", 2, "ef" * 32, T)
    assert rec.event is EventType.BLOCK
    assert rec.subject == SUBJECT and rec.policy == POLICY
    assert rec.decision is not None and rec.decision.allow is False
    assert rec.decision.violations[1]["gap"] == 0.12
    assert rec.evidence["groups"]["b"] == 12
    assert rec.envelope == env and rec.digest == envelope_digest(env)
    assert rec.signer == NODE_KEY.key_id
    # A record without policy/decision (an alert) is fine, and seq 1 starts the chain.
    payload = build_record(node_id="n", seq=1, prev=GENESIS_PREV, time=T, event="alert",
                           subject=SUBJECT)
    alert = AuditRecord.from_envelope(sign_record(payload, NODE_KEY), NODE_KEY.public)
    assert alert.policy is None and alert.decision is None and dict(alert.evidence) == {}


BAD_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    ("wrong schema", {"schema": "warden.audit/v2"}),
    ("missing node", {"node_id": _DROP}),
    ("bad node id", {"node_id": "a b"}),
    ("hub node id", {"node_id": "hub"}),
    ("seq zero", {"seq": 0}),
    ("seq bool", {"seq": True}),
    ("seq string", {"seq": "2"}),
    ("short prev", {"prev": "ab"}),
    ("upper prev", {"prev": "EF" * 32}),
    ("seq 1 needs genesis prev", {"seq": 1}),
    ("time not utc z", {"time": "2026-11-26T11:00:00+01:00"}),
    ("time garbage", {"time": "yesterday"}),
    ("unknown event", {"event": "party"}),
    ("unknown field", {"extra": 1}),
    ("subject missing digest", {"subject": {"model": "m", "version": "1"}}),
    ("subject bad digest", {"subject": {"model": "m", "version": "1", "artifact_sha256": "x"}}),
    ("policy version 0", {"policy": {"name": "p", "version": 0, "digest": "cd" * 32}}),
    ("decision allow string", {"decision": {"allow": "yes", "violations": []}}),
    ("evidence list", {"evidence": [1, 2]}),
]


@pytest.mark.parametrize("name,over", BAD_PAYLOADS, ids=[b[0] for b in BAD_PAYLOADS])
def test_bad_payloads(name: str, over: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        AuditRecord.from_envelope(_sign(_payload(**over)), NODE_KEY.public)


def test_signature_and_envelope_failures() -> None:
    env = _sign(_payload())
    with pytest.raises(SignatureError):
        AuditRecord.from_envelope(env, keys.generate().public)
    with pytest.raises(FormatError):  # a hub event type is not an audit record
        AuditRecord.from_envelope(_sign(_payload(), ptype=HUB_EVENT_PAYLOAD_TYPE), NODE_KEY.public)
    non_canonical = json.dumps(_payload(), indent=1).encode()
    with pytest.raises(FormatError, match="canonical"):
        AuditRecord.from_envelope(
            dsse.sign(AUDIT_PAYLOAD_TYPE, non_canonical, [NODE_KEY]).to_json(), NODE_KEY.public
        )
    with pytest.raises(FormatError):
        AuditRecord.from_envelope(b"not json", NODE_KEY.public)


@given(pos=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_refused(pos: int, bit: int) -> None:
    env = bytearray(sign_record(canonical_json(_payload()), NODE_KEY))
    env[pos % len(env)] ^= 1 << bit
    try:
        rec = AuditRecord.from_envelope(bytes(env), NODE_KEY.public)
    except WardenError:
        return
    # Only JSON-insignificant flips may survive, and then the signed content is unchanged.
    original = AuditRecord.from_envelope(sign_record(canonical_json(_payload()), NODE_KEY),
                                         NODE_KEY.public)
    assert (rec.seq, rec.prev, rec.subject, rec.decision) == (
        original.seq, original.prev, original.subject, original.decision,
    )


# --- hub events -------------------------------------------------------------------------------


def _event(kind: HubEventKind, body: dict[str, Any], seq: int = 1) -> bytes:
    prev = GENESIS_PREV if seq == 1 else "ab" * 32
    payload = build_hub_event(seq=seq, prev=prev, time=T, kind=kind, body=body)
    return sign_hub_event(payload, HUB_KEY)


def _rotation_body(sign_with: keys.SigningKey | None = None) -> dict[str, Any]:
    old, new = NODE_KEY, keys.SigningKey.from_seed(b"\x03" * 32)
    sig = (sign_with or old).sign(rotation_message("emea-1", old.public, new.public))
    return {
        "node_id": "emea-1", "old_key": old.public.b64, "old_key_id": old.key_id,
        "new_key": new.public.b64, "new_key_id": new.key_id,
        "signature": base64.b64encode(sig).decode(),
    }


GOOD_BODIES: dict[HubEventKind, dict[str, Any]] = {
    HubEventKind.ENROLLMENT: {
        "node_id": "emea-1", "public_key": NODE_KEY.public.b64, "key_id": NODE_KEY.key_id,
        "enrolled_at": "2026-11-26T11:00:00Z", "token_sha256": "12" * 32,
    },
    HubEventKind.KEY_ROTATION: _rotation_body(),
    HubEventKind.POLICY_PUBLICATION: {"name": "lending", "version": 3, "digest": "cd" * 32},
    HubEventKind.APPROVAL: {"digest": "34" * 32, "role": "risk_officer", "subject": "credit@7"},
    HubEventKind.ROOT_PUBLICATION: {"version": 2, "digest": "ef" * 32},
}


@pytest.mark.parametrize("kind", list(HubEventKind))
def test_hub_events_round_trip(kind: HubEventKind) -> None:
    env = _event(kind, GOOD_BODIES[kind], seq=3)
    ev = HubEvent.from_envelope(env, HUB_KEY.public)
    assert (ev.kind, ev.seq, ev.node_id) == (kind, 3, "hub")
    assert dict(ev.body) == GOOD_BODIES[kind]
    with pytest.raises(SignatureError):
        HubEvent.from_envelope(env, NODE_KEY.public)
    with pytest.raises(FormatError):
        AuditRecord.from_envelope(env, HUB_KEY.public)


def test_bad_hub_events() -> None:
    enrol = dict(GOOD_BODIES[HubEventKind.ENROLLMENT])
    with pytest.raises(FormatError):
        _event(HubEventKind.ENROLLMENT, {**enrol, "key_id": "00" * 32})
    with pytest.raises(FormatError):
        _event(HubEventKind.ENROLLMENT, {**enrol, "extra": 1})
    with pytest.raises(SignatureError):  # a rotation not signed by the old key
        _event(HubEventKind.KEY_ROTATION, _rotation_body(sign_with=keys.generate()))
    with pytest.raises(FormatError):
        _event(HubEventKind.POLICY_PUBLICATION, {"name": "p", "version": 0, "digest": "cd" * 32})
    with pytest.raises(ValueError):
        build_hub_event(seq=1, prev=GENESIS_PREV, time=T, kind="coffee", body={})
    payload = json.loads(build_hub_event(seq=1, prev=GENESIS_PREV, time=T,
                                         kind=HubEventKind.APPROVAL,
                                         body=GOOD_BODIES[HubEventKind.APPROVAL]))
    payload["node_id"] = "emea-1"
    with pytest.raises(FormatError):
        HubEvent.from_envelope(_sign(payload, HUB_KEY, HUB_EVENT_PAYLOAD_TYPE), HUB_KEY.public)


def _raw(payload: bytes) -> bytes:
    return dsse.sign(AUDIT_PAYLOAD_TYPE, payload, [NODE_KEY]).to_json()


_CANONICAL = canonical_json(_payload())
# Byte-level payloads whose fields one parser could read differently from another, or that
# are not the one RFC 8785 form: each must be refused although the signature is valid.
NON_CANONICAL = {
    "duplicate key (last wins in Python)": _CANONICAL[:-1] + b',"node_id":"other"}',
    "duplicate key (first occurrence)": _CANONICAL.replace(
        b'{"decision"', b'{"seq":9,"decision"', 1),
    "integer beyond 2^53": _CANONICAL.replace(b'"seq":2', b'"seq":9007199254740993'),
    "lone surrogate escape": _CANONICAL.replace(b'"credit"', b'"\\ud800"'),
    "escaped ASCII": _CANONICAL.replace(b'"credit"', b'"\\u0063redit"'),
    "whitespace": _CANONICAL.replace(b",", b", ", 1),
    "integral float": _CANONICAL.replace(b'"auc":0.75', b'"auc":1.0'),
    "float exponent spelling": _CANONICAL.replace(b'"auc":0.75', b'"auc":7.5E-1'),
    "UTF-16 text": _CANONICAL.decode().encode("utf-16"),
    # int() refuses more than 4300 digits with a plain ValueError.
    "integer of 5000 digits as seq": _CANONICAL.replace(b'"seq":2', b'"seq":' + b"9" * 5000),
    "integer of 5000 digits in evidence": _CANONICAL.replace(
        b'"auc":0.75', b'"auc":' + b"1" * 5000),
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_non_canonical_payloads_are_refused(name: str) -> None:
    with pytest.raises(FormatError):
        AuditRecord.from_envelope(_raw(NON_CANONICAL[name]), NODE_KEY.public)


@pytest.mark.parametrize("value", [b"1234567890123456", b"9007199254740991", b"1e-7", b"1e+21",
                                   b"10000000000000000", b"0.30000000000000004", b"-0.5"])
def test_canonical_numbers_take_the_exact_path_and_pass(value: bytes) -> None:
    payload = _CANONICAL.replace(b'"auc":0.75', b'"auc":' + value)
    assert canonical_json(json.loads(payload)) == payload  # the oracle agrees it is canonical
    record = AuditRecord.from_envelope(_raw(payload), NODE_KEY.public)
    assert record.evidence["auc"] == json.loads(value)
