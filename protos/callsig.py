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
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

from trust.canonical import canonical_json
from trust.dsse import pae
from trust.keys import SigningKey

__all__ = [
    "CALL_PAYLOAD_TYPE",
    "MD_NODE",
    "MD_NONCE",
    "MD_SIGNATURE",
    "MD_TIME",
    "call_message",
    "sign_call",
]

CALL_PAYLOAD_TYPE = "application/vnd.warden.call+json"
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
