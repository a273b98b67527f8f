"""The trust root: self-verification, expiry, TUF-style rotation, role checks, tampering.

Every root here is built with fixed keys and verified at fixed times, so expiry boundaries
are exact. Malformed roots are signed properly, so the test proves the *content* check fires,
not the signature check.

Why one file of ~510 lines: the named tables of malformed roots and of rotation attacks share
one set of fixed keys and builders, and read best side by side.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trust import dsse
from trust.canonical import canonical_json
from trust.errors import (
    ExpiredError,
    FormatError,
    RollbackError,
    SignatureError,
    ThresholdError,
    TrustError,
)
from trust.keys import SigningKey
from trust.root import ROOT_PAYLOAD_TYPE, Role, RootMetadata, TrustRoot

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""The "now" these tests verify at, unless they say otherwise."""


def seeded_key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


R1, R2, R3, R4, R5 = (seeded_key(n) for n in (21, 22, 23, 24, 25))
O1, O2, O3 = (seeded_key(n) for n in (31, 32, 33))
HUB, APPROVER = seeded_key(41), seeded_key(51)

YEAR = timedelta(days=365)
SIGNER_ERRORS = (SignatureError, ThresholdError)


def ids(*keys: SigningKey) -> tuple[Any, ...]:
    return tuple(k.key_id for k in keys)


def make_meta(
    version: int = 1,
    *,
    root: tuple[SigningKey, ...] = (R1, R2),
    root_t: int = 2,
    policy: tuple[SigningKey, ...] = (O1, O2, O3),
    policy_t: int = 2,
    expires: datetime = T0 + YEAR,
    approvers: dict[str, tuple[tuple[SigningKey, ...], int]] | None = None,
) -> RootMetadata:
    roles = {
        "root": Role(ids(*root), root_t),
        "policy": Role(ids(*policy), policy_t),
        "hub": Role(ids(HUB), 1),
    }
    used = set(root) | set(policy) | {HUB}
    for name, (members, t) in (approvers or {}).items():
        roles[f"approver:{name}"] = Role(ids(*members), t)
        used |= set(members)
    return RootMetadata(version, expires, {k.key_id: k.public for k in used}, roles)


def signed(meta: RootMetadata, *signers: SigningKey) -> bytes:
    """The envelope bytes as they would be read from disk."""
    return meta.envelope(signers).to_json()


V1 = make_meta(1)
V1_ENV = signed(V1, R1, R2)


def root_v1() -> TrustRoot:
    return TrustRoot.from_envelope(V1_ENV, now=T0)


# --- a root verifies against itself ---------------------------------------------------------


def test_init_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(V1_ENV)
    root = TrustRoot.load(path, now=T0)
    assert root.version == 1
    assert root.expires == T0 + YEAR
    assert root.role("root") == Role(tuple(sorted(ids(R1, R2))), 2)
    assert root.role("policy").threshold == 2
    assert set(root.role_keys("policy")) == set(ids(O1, O2, O3))
    assert root.role_keys("hub") == {HUB.key_id: HUB.public}
    assert root.envelope.payload == V1.to_payload()


def test_payload_is_canonical_json_in_the_documented_schema() -> None:
    payload = V1.to_payload()
    body = json.loads(payload)
    assert canonical_json(body) == payload
    assert body["schema"] == "warden.root/v1"
    assert body["version"] == 1
    assert body["expires"] == "2027-01-01T00:00:00Z"
    assert body["keys"][R1.key_id] == {"keytype": "ed25519", "public": R1.public.b64}
    assert body["roles"]["hub"] == {"keyids": [HUB.key_id], "threshold": 1}
    back = RootMetadata.from_payload(payload)
    assert back.to_payload() == payload
    assert {n: set(r.keyids) for n, r in back.roles.items()} == {
        n: set(r.keyids) for n, r in V1.roles.items()
    }


def test_unsigned_root_is_refused() -> None:
    with pytest.raises(SignatureError):
        TrustRoot.from_envelope(signed(V1), now=T0)


def test_root_below_its_own_threshold_is_refused() -> None:
    with pytest.raises(ThresholdError):
        TrustRoot.from_envelope(signed(V1, R1), now=T0)


def test_root_signed_by_non_root_keys_is_refused() -> None:
    with pytest.raises(SignatureError):
        TrustRoot.from_envelope(signed(V1, O1, O2, O3, HUB), now=T0)


def test_root_signature_repeated_does_not_meet_threshold() -> None:
    env = dsse.Envelope.from_json(signed(V1, R1))
    doubled = dsse.Envelope(env.payload_type, env.payload, env.signatures * 2).to_json()
    with pytest.raises(ThresholdError):
        TrustRoot.from_envelope(doubled, now=T0)


def test_wrong_payload_type_is_refused() -> None:
    env = dsse.sign("application/vnd.warden.policy+json", V1.to_payload(), [R1, R2])
    with pytest.raises(FormatError):
        TrustRoot.from_envelope(env.to_json(), now=T0)


# --- expiry --------------------------------------------------------------------------------


def test_expired_root_is_refused() -> None:
    with pytest.raises(ExpiredError):
        TrustRoot.from_envelope(V1_ENV, now=T0 + 2 * YEAR)


def test_expiry_boundary() -> None:
    TrustRoot.from_envelope(V1_ENV, now=T0 + YEAR - timedelta(seconds=1))
    with pytest.raises(ExpiredError):
        TrustRoot.from_envelope(V1_ENV, now=T0 + YEAR)


def test_expired_root_loads_only_when_explicitly_allowed(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(V1_ENV)
    with pytest.raises(ExpiredError):
        TrustRoot.load(path, now=T0 + 2 * YEAR)
    assert TrustRoot.load(path, now=T0 + 2 * YEAR, allow_expired=True).version == 1


def test_default_clock_is_now() -> None:
    past = make_meta(expires=datetime(2000, 1, 1, tzinfo=T0.tzinfo))
    with pytest.raises(ExpiredError):
        TrustRoot.from_envelope(signed(past, R1, R2))


# --- rotation --------------------------------------------------------------------------------

V2 = make_meta(2, root=(R3, R4), expires=T0 + 2 * YEAR)


def test_rotation_signed_by_old_and_new_root_roles() -> None:
    root2 = root_v1().rotate(signed(V2, R1, R2, R3, R4), now=T0)
    assert root2.version == 2
    assert set(root2.role("root").keyids) == set(ids(R3, R4))


@pytest.mark.parametrize("version", [1, 3, 5])
def test_rotation_to_any_version_but_next_is_a_rollback(version: int) -> None:
    meta = make_meta(version, root=(R3, R4))
    with pytest.raises(RollbackError):
        root_v1().rotate(signed(meta, R1, R2, R3, R4), now=T0)


def test_rotation_signed_only_by_the_new_keys_is_refused() -> None:
    with pytest.raises(SIGNER_ERRORS):
        root_v1().rotate(signed(V2, R3, R4), now=T0)


def test_rotation_signed_only_by_the_old_keys_is_refused() -> None:
    with pytest.raises(SIGNER_ERRORS):
        root_v1().rotate(signed(V2, R1, R2), now=T0)


def test_rotation_below_the_old_threshold_is_refused() -> None:
    # overlapping roles: old {R1,R2} 2-of-2, new {R2,R3} 2-of-2; R2+R3 satisfy only the new one
    v2 = make_meta(2, root=(R2, R3))
    with pytest.raises(ThresholdError):
        root_v1().rotate(signed(v2, R2, R3), now=T0)
    assert root_v1().rotate(signed(v2, R1, R2, R3), now=T0).version == 2


def test_rotation_below_the_new_threshold_is_refused() -> None:
    v2 = make_meta(2, root=(R3, R4, R5), root_t=3)
    with pytest.raises(ThresholdError):
        root_v1().rotate(signed(v2, R1, R2, R3, R4), now=T0)


def test_rotation_to_an_expired_root_is_refused() -> None:
    v2 = make_meta(2, root=(R3, R4), expires=T0 - timedelta(seconds=1))
    with pytest.raises(ExpiredError):
        root_v1().rotate(signed(v2, R1, R2, R3, R4), now=T0)


def test_rotation_with_a_policy_envelope_is_refused() -> None:
    env = dsse.sign("application/vnd.warden.policy+json", V2.to_payload(), [R1, R2, R3, R4])
    with pytest.raises(FormatError):
        root_v1().rotate(env.to_json(), now=T0)


V3 = make_meta(3, root=(R5,), root_t=1, expires=T0 + 3 * YEAR)
V2_ENV = signed(V2, R1, R2, R3, R4)
V3_ENV = signed(V3, R3, R4, R5)


def test_chain_of_two_rotations() -> None:
    root3 = root_v1().rotate_chain([V2_ENV, V3_ENV], now=T0)
    assert root3.version == 3
    assert root3.role("root") == Role(ids(R5), 1)
    # the same, one step at a time
    assert root_v1().rotate(V2_ENV, now=T0).rotate(V3_ENV, now=T0).version == 3


def test_chain_step_must_be_signed_by_its_predecessor_not_the_pinned_root() -> None:
    v3_by_v1 = signed(V3, R1, R2, R5)  # v1's keys, but v2 is the one that must sign v3
    with pytest.raises(SIGNER_ERRORS):
        root_v1().rotate_chain([V2_ENV, v3_by_v1], now=T0)


def test_chain_that_skips_a_version_is_a_rollback() -> None:
    with pytest.raises(RollbackError):
        root_v1().rotate_chain([V3_ENV], now=T0)
    v4 = make_meta(4, root=(R5,), root_t=1)
    with pytest.raises(RollbackError):
        root_v1().rotate_chain([V2_ENV, signed(v4, R3, R4, R5)], now=T0)


def test_chain_replaying_the_pinned_version_is_a_rollback() -> None:
    with pytest.raises(RollbackError):
        root_v1().rotate_chain([V1_ENV, V2_ENV], now=T0)


def test_expired_intermediate_root_in_a_chain_is_fine() -> None:
    v2_short = make_meta(2, root=(R3, R4), expires=T0 + timedelta(days=10))
    chain = [signed(v2_short, R1, R2, R3, R4), V3_ENV]
    later = T0 + timedelta(days=100)  # v1 and v2 have expired by now; v3 has not
    pinned = TrustRoot.from_envelope(V1_ENV, now=later, allow_expired=True)
    assert pinned.rotate_chain(chain, now=later).version == 3


def test_expired_final_root_in_a_chain_is_refused() -> None:
    v3_short = make_meta(3, root=(R5,), root_t=1, expires=T0 + timedelta(days=10))
    later = T0 + timedelta(days=100)
    pinned = TrustRoot.from_envelope(V1_ENV, now=later, allow_expired=True)
    with pytest.raises(ExpiredError):
        pinned.rotate_chain([V2_ENV, signed(v3_short, R3, R4, R5)], now=later)


def test_empty_chain_still_checks_the_pinned_root_expiry() -> None:
    pinned = TrustRoot.from_envelope(V1_ENV, now=T0 + 2 * YEAR, allow_expired=True)
    with pytest.raises(ExpiredError):
        pinned.rotate_chain([], now=T0 + 2 * YEAR)
    assert root_v1().rotate_chain([], now=T0).version == 1


# --- role content ----------------------------------------------------------------------------


def _roles_with(name: str, role: Role) -> dict[str, Role]:
    roles = dict(V1.roles)
    roles[name] = role
    return roles


BAD_ROLES: dict[str, tuple[str, Role]] = {
    "unknown-key": ("policy", Role(ids(O1, APPROVER), 1)),
    "threshold-0": ("policy", Role(ids(O1, O2), 0)),
    "threshold-negative": ("hub", Role(ids(HUB), -1)),
    "threshold-above-keys": ("root", Role(ids(R1, R2), 3)),
    "no-keys": ("hub", Role((), 1)),
    "duplicate-keyid": ("policy", Role(ids(O1, O1), 1)),
    "unknown-role-name": ("auditor", Role(ids(O1), 1)),
    "empty-approver-name": ("approver:", Role(ids(O1), 1)),
}


@pytest.mark.parametrize("case", sorted(BAD_ROLES))
def test_bad_role_is_refused_when_built(case: str) -> None:
    name, role = BAD_ROLES[case]
    with pytest.raises(FormatError):
        RootMetadata(1, T0 + YEAR, V1.keys, _roles_with(name, role))


@pytest.mark.parametrize("case", sorted(BAD_ROLES))
def test_bad_role_in_a_signed_root_is_refused(case: str) -> None:
    name, role = BAD_ROLES[case]
    body = json.loads(V1.to_payload())
    body["roles"][name] = {"keyids": list(role.keyids), "threshold": role.threshold}
    with pytest.raises(FormatError):
        TrustRoot.from_envelope(_signed_body(body), now=T0)


@pytest.mark.parametrize("missing", ["root", "policy", "hub"])
def test_missing_standard_role_is_refused(missing: str) -> None:
    roles = dict(V1.roles)
    del roles[missing]
    with pytest.raises(FormatError, match=missing):
        RootMetadata(1, T0 + YEAR, V1.keys, roles)


def test_approver_roles() -> None:
    meta = make_meta(approvers={"risk_officer": ((APPROVER, O1), 1), "dpo": ((O2,), 1)})
    root = TrustRoot.from_envelope(signed(meta, R1, R2), now=T0)
    assert root.approver_roles() == ("dpo", "risk_officer")
    env = dsse.sign("application/vnd.warden.approval+json", b"{}", [APPROVER])
    assert root.verify_role(env, "approver:risk_officer") == {APPROVER.key_id}
    with pytest.raises(SignatureError):
        root.verify_role(env, "approver:dpo")


def test_verify_role_threshold_and_duplicates() -> None:
    root = root_v1()
    pt = "application/vnd.warden.policy+json"
    assert root.verify_role(dsse.sign(pt, b"x", [O1, O3]), "policy") == set(ids(O1, O3))
    one = dsse.sign(pt, b"x", [O1])
    with pytest.raises(ThresholdError):
        root.verify_role(one, "policy")
    with pytest.raises(ThresholdError):  # a duplicated signature trying to meet the threshold
        root.verify_role(dsse.Envelope(pt, b"x", one.signatures * 2), "policy")
    with pytest.raises(ThresholdError):  # an unknown signer is ignored, not counted
        root.verify_role(dsse.sign(pt, b"x", [O1, APPROVER]), "policy")
    with pytest.raises(SignatureError):  # root keys are not policy keys
        root.verify_role(dsse.sign(pt, b"x", [R1, R2]), "policy")
    with pytest.raises(FormatError):
        root.verify_role(dsse.sign(pt, b"x", [O1, O2]), "policy", payload_type="other/type")


def test_unknown_role_lookup_is_a_trust_error() -> None:
    with pytest.raises(TrustError):
        root_v1().verify_role(dsse.sign("t", b"x", [O1]), "approver:nobody")


# --- malformed payloads, properly signed -----------------------------------------------------


def _signed_body(body: Any, *, raw: bytes | None = None) -> bytes:
    payload = raw if raw is not None else canonical_json(body)
    return dsse.sign(ROOT_PAYLOAD_TYPE, payload, [R1, R2]).to_json()


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(V1.to_payload())
    for k, v in changes.items():
        if v is _DELETE:
            del body[k]
        else:
            body[k] = v
    return body


_DELETE = object()
_KEYS = json.loads(V1.to_payload())["keys"]
_R1 = R1.key_id

BAD_PAYLOADS: dict[str, Any] = {
    "missing-version": _body(version=_DELETE),
    "missing-expires": _body(expires=_DELETE),
    "missing-keys": _body(keys=_DELETE),
    "missing-roles": _body(roles=_DELETE),
    "missing-schema": _body(schema=_DELETE),
    "unknown-field": _body(comment="hi"),
    "wrong-schema": _body(schema="warden.root/v2"),
    "version-0": _body(version=0),
    "version-negative": _body(version=-3),
    "version-string": _body(version="1"),
    "version-bool": _body(version=True),
    "version-float": _body(version=1.5),
    "expires-garbage": _body(expires="next tuesday"),
    "expires-naive": _body(expires="2027-01-01T00:00:00"),
    "expires-number": _body(expires=1735689600),
    "keys-not-object": _body(keys=[]),
    "roles-not-object": _body(roles=[]),
    "keytype-rsa": _body(keys={**_KEYS, _R1: {"keytype": "rsa", "public": R1.public.b64}}),
    "key-extra-field": _body(keys={**_KEYS, _R1: {**_KEYS[_R1], "scheme": "ed25519"}}),
    "key-bad-base64": _body(keys={**_KEYS, _R1: {"keytype": "ed25519", "public": "%%"}}),
    "key-short": _body(keys={**_KEYS, _R1: {"keytype": "ed25519", "public": "AAAA"}}),
    "key-public-not-string": _body(keys={**_KEYS, _R1: {"keytype": "ed25519", "public": 5}}),
    "keyid-mismatch": _body(keys={**_KEYS, _R1: {"keytype": "ed25519", "public": R3.public.b64}}),
    "role-extra-field": _body(
        roles={**_body()["roles"], "hub": {"keyids": [HUB.key_id], "threshold": 1, "x": 1}}
    ),
    "role-threshold-string": _body(
        roles={**_body()["roles"], "hub": {"keyids": [HUB.key_id], "threshold": "1"}}
    ),
    "role-threshold-bool": _body(
        roles={**_body()["roles"], "hub": {"keyids": [HUB.key_id], "threshold": True}}
    ),
    "role-keyids-not-list": _body(
        roles={**_body()["roles"], "hub": {"keyids": HUB.key_id, "threshold": 1}}
    ),
    "payload-not-object": [1, 2],
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_malformed_signed_payload_is_a_format_error(case: str) -> None:
    with pytest.raises(FormatError):
        TrustRoot.from_envelope(_signed_body(BAD_PAYLOADS[case]), now=T0)


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b'{"version": 1'], ids=repr)
def test_signed_payload_that_is_not_json_is_a_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        TrustRoot.from_envelope(_signed_body(None, raw=raw), now=T0)


def test_malformed_rotation_payload_is_a_format_error() -> None:
    body = json.loads(V2.to_payload())
    body["roles"]["policy"]["threshold"] = 9
    env = dsse.sign(ROOT_PAYLOAD_TYPE, canonical_json(body), [R1, R2, R3, R4])
    with pytest.raises(FormatError):
        root_v1().rotate(env.to_json(), now=T0)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        TrustRoot.load(tmp_path / "root.json", now=T0)
    with pytest.raises(FormatError):
        TrustRoot.load(tmp_path, now=T0)  # a directory
    (tmp_path / "bad.json").write_bytes(b"{")
    with pytest.raises(FormatError, match="bad.json"):
        TrustRoot.load(tmp_path / "bad.json", now=T0)


# --- tamper evidence (property) --------------------------------------------------------------

ROOT_ONE = make_meta(root=(R1,), root_t=1).envelope([R1]).to_json()
ROOT_TWO = V1.envelope([R1, R2]).to_json()
ROTATION = V2.envelope([R1, R2, R3, R4]).to_json()
TAMPER_ERRORS = (SignatureError, ThresholdError, FormatError)


def _flip(data: bytes, index: int, mask: int) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def test_untampered_roots_verify() -> None:
    assert TrustRoot.from_envelope(ROOT_ONE, now=T0).version == 1
    assert TrustRoot.from_envelope(ROOT_TWO, now=T0).version == 1
    assert root_v1().rotate(ROTATION, now=T0).version == 2


@pytest.mark.parametrize("mask", [0x01, 0x80])
@pytest.mark.parametrize("data", [ROOT_ONE, ROOT_TWO], ids=["1of1", "2of2"])
def test_every_single_byte_flip_of_a_root_is_detected(data: bytes, mask: int) -> None:
    passed = []
    for i in range(len(data)):
        try:
            TrustRoot.from_envelope(_flip(data, i, mask), now=T0)
        except TAMPER_ERRORS:
            continue
        passed.append(i)
    assert not passed, f"tampered bytes at offsets {passed} still verify"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_flip_of_a_root_fails_with_a_warden_error(data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from([ROOT_ONE, ROOT_TWO]))
    index = data.draw(st.integers(0, len(raw) - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(TAMPER_ERRORS):
        TrustRoot.from_envelope(_flip(raw, index, mask), now=T0)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(ROTATION) - 1), st.integers(1, 255))
def test_any_single_byte_flip_of_a_rotation_is_refused(index: int, mask: int) -> None:
    pinned = root_v1()
    with pytest.raises((TrustError, FormatError)):  # a changed version digit is a RollbackError
        pinned.rotate(_flip(ROTATION, index, mask), now=T0)


@pytest.mark.parametrize("expires", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_expiry_is_a_format_error(expires: str) -> None:
    with pytest.raises(FormatError):
        TrustRoot.from_envelope(_signed_body(_body(expires=expires)), now=T0)
