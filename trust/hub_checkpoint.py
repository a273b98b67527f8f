"""Verifying a hub's checkpoints against a trust root (agents, auditors, operator commands).

A hub signs its checkpoints with its hub key under the key name = the checkpoint origin (the
C2SP convention). A checkpoint is accepted when it names the expected ``origin`` and at least
the ``hub`` role's threshold of distinct keys of that role signed it under that name. The
origin is pinned by the caller, never taken from the note: the key name a signature is
checked under is the pinned origin, so a hub-role key signing another log's checkpoints
cannot pass for this one.

This lives in :mod:`trust` (it needs nothing else) so an agent, which may not import ``hub``,
verifies checkpoints with the same code as the hub's own commands.
"""

from __future__ import annotations

from trust._internal.verified import TOKEN
from trust.checkpoint import VerifiedCheckpoint, VerifierKey, open_note_keys, parse_checkpoint
from trust.errors import ProofError, ThresholdError
from trust.root import TrustRoot

__all__ = ["verify_hub_checkpoint"]


def verify_hub_checkpoint(
    root: TrustRoot, note: bytes | str, *, origin: str
) -> VerifiedCheckpoint:
    """Verify ``note`` is a checkpoint of ``origin`` signed by the ``hub`` role's threshold of
    ``root``'s keys; return the verified checkpoint.

    Raises :class:`SignatureError` (no hub-role signature, or one that fails),
    :class:`ThresholdError` (fewer distinct hub-role keys than the role's threshold) or
    :class:`ProofError` (another origin).
    """
    role = root.role("hub")
    verifiers = [VerifierKey.of(origin, key) for key in root.role_keys("hub").values()]
    verified_text, signers = open_note_keys(note, verifiers)
    cp = parse_checkpoint(verified_text)
    if cp.origin != origin:
        raise ProofError(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    if len(signers) < role.threshold:
        raise ThresholdError(
            f"checkpoint of {origin!r} size {cp.size} is signed by {len(signers)} key(s) of the"
            f" trust root's hub role; its threshold is {role.threshold}"
        )
    return VerifiedCheckpoint._verified(cp, signers, token=TOKEN)
