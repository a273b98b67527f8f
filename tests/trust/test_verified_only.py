"""Verified types can only come out of their verifying constructors, from the exact bytes.

For each signed type (trust root, audit record, hub event, approval, verified checkpoint):
building it directly raises ``UnverifiedError``, so does ``dataclasses.replace`` on a real one
(it would otherwise copy a verified object into one with unverified fields), and its
``from_envelope`` refuses anything but ``bytes`` — a parsed ``Envelope`` would let the caller
hand over a re-encoding instead of the bytes signed. A parsed checkpoint and a verified one
are different types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trust import checkpoint as ck
from trust import dsse
from trust.approval import APPROVAL_PAYLOAD_TYPE, Approval, build_approval
from trust.canonical import Sha256
from trust.errors import FormatError, UnverifiedError
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.keys import SigningKey
from trust.record import (
    GENESIS_PREV,
    AuditRecord,
    EventType,
    HubEvent,
    HubEventKind,
    Subject,
    build_hub_event,
    build_record,
    sign_hub_event,
    sign_record,
)
from trust.root import Role, RootMetadata, TrustRoot

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)
ORIGIN = "test.warden/hub"


def _key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


ROOT_KEY, NODE, HUB, CFO = _key(61), _key(62), _key(63), _key(64)

ROOT_BYTES = RootMetadata(
    version=1,
    expires=NOW + timedelta(days=365),
    keys={k.key_id: k.public for k in (ROOT_KEY, HUB, CFO)},
    roles={
        "root": Role((ROOT_KEY.key_id,), 1),
        "policy": Role((ROOT_KEY.key_id,), 1),
        "hub": Role((HUB.key_id,), 1),
        "approver:cfo": Role((CFO.key_id,), 1),
    },
).envelope([ROOT_KEY]).to_json()
ROOT = TrustRoot.from_envelope(ROOT_BYTES, now=NOW)

RECORD_BYTES = sign_record(
    build_record(
        node_id="emea-1",
        seq=1,
        prev=GENESIS_PREV,
        time=NOW,
        event=EventType.VALIDATION,
        subject=Subject("credit", "7", Sha256("ab" * 32)),
    ),
    NODE,
)
EVENT_BYTES = sign_hub_event(
    build_hub_event(
        seq=1,
        prev=GENESIS_PREV,
        time=NOW,
        kind=HubEventKind.POLICY_PUBLICATION,
        body={"name": "lending", "version": 3, "digest": "cd" * 32},
    ),
    HUB,
)
APPROVAL_BYTES = dsse.sign(
    APPROVAL_PAYLOAD_TYPE,
    build_approval(role="cfo", subject="credit:7", decision="approve", time="2026-11-26T11:00:00Z"),
    [CFO],
).to_json()
NOTE = ck.sign_checkpoint(ck.Checkpoint(ORIGIN, 5, bytes(32)), ORIGIN, HUB)

# name -> (the bytes, the verifying constructor)
VERIFIERS: dict[str, tuple[bytes, Callable[[Any], object]]] = {
    "TrustRoot": (ROOT_BYTES, lambda data: TrustRoot.from_envelope(data, now=NOW)),
    "TrustRoot.rotate": (b"", lambda data: ROOT.rotate(data, now=NOW)),
    "AuditRecord": (RECORD_BYTES, lambda data: AuditRecord.from_envelope(data, NODE.public)),
    "HubEvent": (EVENT_BYTES, lambda data: HubEvent.from_envelope(data, HUB.public)),
    "Approval": (APPROVAL_BYTES, lambda data: Approval.from_envelope(data, ROOT)),
}


def _verified() -> dict[str, Any]:
    return {
        "TrustRoot": ROOT,
        "AuditRecord": AuditRecord.from_envelope(RECORD_BYTES, NODE.public),
        "HubEvent": HubEvent.from_envelope(EVENT_BYTES, HUB.public),
        "Approval": Approval.from_envelope(APPROVAL_BYTES, ROOT),
        "VerifiedCheckpoint": ck.verify_checkpoint(NOTE, ORIGIN, HUB.public, ORIGIN),
    }


VERIFIED = _verified()


def _fields_of(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@pytest.mark.parametrize("name", sorted(VERIFIED))
def test_building_a_verified_type_directly_raises(name: str) -> None:
    real = VERIFIED[name]
    with pytest.raises(UnverifiedError, match=f"{type(real).__name__} is built only by"):
        type(real)(**_fields_of(real))  # every field right, but nothing was verified


@pytest.mark.parametrize("name", sorted(VERIFIED))
def test_replace_on_a_verified_object_raises(name: str) -> None:
    real = VERIFIED[name]
    field = next(f.name for f in dataclasses.fields(real))
    with pytest.raises(UnverifiedError):
        dataclasses.replace(real, **{field: getattr(real, field)})


@pytest.mark.parametrize("name", sorted(VERIFIERS))
@pytest.mark.parametrize("kind", ["Envelope", "str", "bytearray", "memoryview"])
def test_from_envelope_takes_exact_bytes_only(name: str, kind: str) -> None:
    data, construct = VERIFIERS[name]
    if name == "TrustRoot.rotate":
        data = ROOT_BYTES  # any well-formed root: the type is refused before its content
    wrapped: object = {
        "Envelope": lambda: dsse.Envelope.from_json(data),
        "str": lambda: data.decode("utf-8"),
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
    }[kind]()
    with pytest.raises(FormatError, match="expected the exact envelope bytes"):
        construct(wrapped)


@pytest.mark.parametrize("name", ["TrustRoot", "AuditRecord", "HubEvent", "Approval"])
def test_from_envelope_keeps_the_exact_bytes(name: str) -> None:
    data, construct = VERIFIERS[name]
    spaced = data.replace(b'","', b'", "', 1)  # same envelope, other bytes
    assert spaced != data
    obj = construct(spaced)
    kept = obj.envelope.raw if isinstance(obj, TrustRoot) else obj.envelope  # type: ignore[attr-defined]
    assert kept == spaced


def test_parsed_and_verified_checkpoints_are_different_types() -> None:
    parsed = ck.parse_checkpoint(ck.parse_note(NOTE).text)
    verified = ck.verify_checkpoint(NOTE, ORIGIN, HUB.public, ORIGIN)
    by_root = verify_hub_checkpoint(ROOT, NOTE, origin=ORIGIN)
    assert type(parsed) is ck.Checkpoint and not isinstance(parsed, ck.VerifiedCheckpoint)
    assert type(verified) is ck.VerifiedCheckpoint and type(by_root) is ck.VerifiedCheckpoint
    assert [v.public for v in verified.signers] == [HUB.public]
    # The same tree head, whichever way it was obtained.
    assert parsed == verified == by_root and hash(parsed) == hash(verified)
    assert parsed != ck.Checkpoint(ORIGIN, 6, bytes(32))
