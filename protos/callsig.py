"""Per-call node signatures: how an agent proves, on every RPC, that it holds its node key.

The agent adds four metadata entries to each call::

    x-warden-node       the node id
    x-warden-time       unix seconds (decimal) when the call was signed
    x-warden-nonce      32 random hex characters, never reused
    x-warden-signature  base64 ed25519 signature by the node's current key over
                        DSSE-PAE("application/vnd.warden.call+json", JCS({
                            "method": "/warden.v1.LedgerService/Append",
                            "node_id": ..., "time": ..., "nonce": ...,
                            "body_sha256": hex SHA-256 of the serialized request bytes}))

Binding the exact request bytes means a captured signature cannot be reused for another
request; the time window plus a nonce cache stops replays of the same request (and the
ledger's own rules make a replayed Append idempotent anyway). The signed bytes use the same
DSSE pre-authentication encoding as every other Warden signature, under a payload type of
their own, so a call signature can never be mistaken for a signed record or the reverse.

Enroll cannot carry a call signature (the node has no enrolled key yet), so its request
carries a proof of possession instead (fields ``time`` and ``signature``): the enrolling key's
ed25519 signature over::

    DSSE-PAE("application/vnd.warden.enroll+json", JCS({
        "node_id": ..., "key_id": hex SHA-256 id of the enrolling public key,
        "token_sha256": hex SHA-256 of the enrollment token, "time": unix seconds}))

The hub verifies it under the submitted public key before it consumes the token, so nobody can
enroll a key they do not hold; binding node id, token digest and time means a captured proof
works for no other node, token or moment (and the token is single-use anyway). Only the
token's digest is signed, so the statement reveals nothing that could enroll anyone.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from trust.canonical import canonical_json
from trust.dsse import pae
from trust.keys import PublicKey, SigningKey

__all__ = [
    "CALL_PAYLOAD_TYPE",
    "ENROLL_PAYLOAD_TYPE",
    "MD_NODE",
    "MD_NONCE",
    "MD_SIGNATURE",
    "MD_TIME",
    "call_message",
    "enroll_message",
    "sign_call",
    "sign_enrollment",
]

CALL_PAYLOAD_TYPE = "application/vnd.warden.call+json"
ENROLL_PAYLOAD_TYPE = "application/vnd.warden.enroll+json"
MD_NODE = "x-warden-node"
MD_TIME = "x-warden-time"
MD_NONCE = "x-warden-nonce"
MD_SIGNATURE = "x-warden-signature"


def call_message(method: str, node_id: str, unix_time: int, nonce: str, body: bytes) -> bytes:
    """The exact bytes a node signs for one call."""
    statement = {
        "method": method,
        "node_id": node_id,
        "time": unix_time,
        "nonce": nonce,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    return pae(CALL_PAYLOAD_TYPE, canonical_json(statement))


def sign_call(
    key: SigningKey,
    method: str,
    node_id: str,
    body: bytes,
    *,
    unix_time: int | None = None,
    nonce: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata authenticating one call of ``node_id`` with ``key``."""
    t = int(time.time()) if unix_time is None else unix_time
    n = secrets.token_hex(16) if nonce is None else nonce
    sig = key.sign(call_message(method, node_id, t, n, body))
    return (
        (MD_NODE, node_id),
        (MD_TIME, str(t)),
        (MD_NONCE, n),
        (MD_SIGNATURE, base64.b64encode(sig).decode("ascii")),
    )


def enroll_message(node_id: str, public_key: PublicKey, token: str, unix_time: int) -> bytes:
    """The exact bytes an enrolling node signs with the key it enrolls (proof of possession)."""
    statement = {
        "node_id": node_id,
        "key_id": public_key.key_id,
        # The digest the hub stores for the token (hub.tls.hash_token): never the token itself.
        "token_sha256": hashlib.sha256(token.encode("utf-8")).hexdigest(),
        "time": unix_time,
    }
    return pae(ENROLL_PAYLOAD_TYPE, canonical_json(statement))


def sign_enrollment(
    key: SigningKey, node_id: str, token: str, *, unix_time: int | None = None
) -> tuple[int, bytes]:
    """``(time, signature)`` proving that the enroller of ``node_id`` holds ``key``."""
    t = int(time.time()) if unix_time is None else unix_time
    return t, key.sign(enroll_message(node_id, key.public, token, t))
