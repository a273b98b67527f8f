"""Verifying the hub's checkpoints against a trust root (used by operator commands and tests).

A hub signs its checkpoints with its hub key under the key name = the checkpoint origin (the
C2SP convention). A checkpoint is accepted when a key of the trust root's ``hub`` role signed
it; the origin is read from the note and may be pinned with ``origin=``.
"""

from __future__ import annotations

from trust.checkpoint import Checkpoint, VerifierKey, open_note, parse_checkpoint, parse_note
from trust.errors import FormatError, ProofError
from trust.root import TrustRoot

__all__ = ["verify_hub_checkpoint"]


def verify_hub_checkpoint(
    root: TrustRoot, note: bytes | str, *, origin: str | None = None
) -> Checkpoint:
    """Verify ``note`` was signed by a ``hub``-role key of ``root``; return the checkpoint."""
    text = parse_note(note).text
    claimed = text.split("\n", 1)[0]
    if not claimed:
        raise FormatError("checkpoint has an empty origin line")
    verifiers = [VerifierKey.of(claimed, key) for key in root.role_keys("hub").values()]
    verified_text, _ = open_note(note, verifiers)
    cp = parse_checkpoint(verified_text)
    if origin is not None and cp.origin != origin:
        raise ProofError(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    return cp
