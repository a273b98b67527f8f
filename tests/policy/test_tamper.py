"""Property: no single-byte change to a signed bundle file ever yields an allow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust import dsse
from trust.errors import WardenError
from trust.policy.bundle import PolicyBundle, sign_source
from trust.policy.engine import PolicyEngine

from ._support import NOW, POLICIES, make_root, officer

OFFICERS = [officer(i) for i in range(3)]
ROOT = make_root(OFFICERS, officer(100))
# A bundle that allows the passing input, so a tamper that "worked" would show as allow.
ENVELOPE = sign_source(POLICIES / "examples" / "model_governance", OFFICERS[:2], now=NOW)
RAW = ENVELOPE.to_json()
GOOD_INPUT = {"model": {"accuracy": 0.99, "bias": 0.0}}


def _decide(raw: bytes) -> bool:
    bundle = PolicyBundle.from_envelope(raw, ROOT, now=NOW, what="tampered")
    return PolicyEngine(bundle).evaluate(GOOD_INPUT).allow


def test_untampered_bundle_allows():
    assert _decide(RAW) is True


@given(st.integers(0, len(RAW) - 1), st.integers(1, 255))
def test_single_byte_flip_never_allows(position, xor):
    tampered = bytearray(RAW)
    tampered[position] ^= xor
    tampered = bytes(tampered)
    try:
        allowed = _decide(tampered)
    except WardenError:
        return  # refused: exactly what must happen
    # The only flips that may still verify are ones that leave the envelope's meaning intact
    # (JSON whitespace-equivalents cannot occur in our compact form; a signature byte flip
    # fails). So reaching here means the decoded envelope is identical to the original.
    env = dsse.Envelope.from_json(tampered)
    assert env.payload == ENVELOPE.payload and allowed is True


def test_replayed_older_bundle_never_allows(write_bundle):
    src = {"p.rego": "package model_governance\nimport rego.v1\ndefault allow := true\n"}
    old = sign_source(
        write_bundle(
            src, version=1, entrypoint="data.model_governance.allow", decision="allow_rule"
        ),
        OFFICERS[:2],
        now=NOW,
    )
    with pytest.raises(WardenError):
        PolicyBundle.from_envelope(old.to_json(), ROOT, last_version=2, now=NOW)
