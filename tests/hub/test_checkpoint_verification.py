"""verify_hub_checkpoint: the hub role's threshold counts distinct keys; the origin is pinned;
the CLI refuses a checkpoint of another size than the one it asked for."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from hub.cli import _verified_checkpoint
from trust import keys
from trust.checkpoint import Checkpoint, parse_note, sign_checkpoint
from trust.errors import ProofError, SignatureError, ThresholdError, UsageError
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.root import Role as RootRole
from trust.root import RootMetadata, TrustRoot
from trust.timeutil import utcnow

ORIGIN = "test.warden/hub"
ROOT_KEY = keys.generate()
HUB_A, HUB_B, OUTSIDER = keys.generate(), keys.generate(), keys.generate()


def _root(threshold: int) -> TrustRoot:
    meta = RootMetadata(
        version=1,
        expires=utcnow() + timedelta(days=30),
        keys={k.key_id: k.public for k in (ROOT_KEY, HUB_A, HUB_B)},
        roles={
            "root": RootRole((ROOT_KEY.key_id,), 1),
            "policy": RootRole((ROOT_KEY.key_id,), 1),
            "hub": RootRole((HUB_A.key_id, HUB_B.key_id), threshold),
        },
    )
    return TrustRoot.from_envelope(meta.envelope([ROOT_KEY]).to_json())


def _note(*signers: keys.SigningKey, origin: str = ORIGIN, name: str | None = None,
          size: int = 5) -> bytes:
    cp = Checkpoint(origin, size, bytes(32))
    notes = [sign_checkpoint(cp, name or origin, k) for k in signers]
    # Merge the signature lines of each single-signature note into one note.
    text = parse_note(notes[0]).text
    sigs = b"".join(n.split(b"\n\n", 1)[1] for n in notes)
    return text.encode() + b"\n" + sigs


def test_one_signature_does_not_meet_a_threshold_of_two() -> None:
    root = _root(2)
    with pytest.raises(ThresholdError, match="threshold is 2"):
        verify_hub_checkpoint(root, _note(HUB_A), origin=ORIGIN)
    with pytest.raises(ThresholdError):  # the same key twice is still one key
        verify_hub_checkpoint(root, _note(HUB_A, HUB_A), origin=ORIGIN)
    assert verify_hub_checkpoint(root, _note(HUB_A, HUB_B), origin=ORIGIN).size == 5
    assert verify_hub_checkpoint(_root(1), _note(HUB_B), origin=ORIGIN).size == 5


def test_origin_is_pinned() -> None:
    root = _root(1)
    other = _note(HUB_A, origin="other.log/ledger")
    with pytest.raises(SignatureError):  # signed under another log's name
        verify_hub_checkpoint(root, other, origin=ORIGIN)
    mislabelled = _note(HUB_A, origin="other.log/ledger", name=ORIGIN)
    with pytest.raises(ProofError, match="other.log"):
        verify_hub_checkpoint(root, mislabelled, origin=ORIGIN)
    with pytest.raises(SignatureError):
        verify_hub_checkpoint(root, _note(OUTSIDER), origin=ORIGIN)


def test_cli_refuses_a_checkpoint_of_another_size() -> None:
    root = _root(1)
    assert _verified_checkpoint(root, _note(HUB_A, size=5), ORIGIN, size=5).size == 5
    with pytest.raises(ProofError, match="size 4; it returned size 5"):
        _verified_checkpoint(root, _note(HUB_A, size=5), ORIGIN, size=4)


def test_cli_needs_an_origin_to_pin() -> None:
    from hub.cli import _origin

    with pytest.raises(UsageError, match="--origin"):
        _origin(argparse.Namespace(origin=None, hub_dir=None))
    assert _origin(argparse.Namespace(origin="x.example/log", hub_dir=None)) == "x.example/log"
