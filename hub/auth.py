"""Who may call what: transport security, caller authentication, and the per-RPC role table.

Design (the lead copies this into ARCHITECTURE.md):

* **Transport**: TLS by default. ``warden hub init`` makes a private CA and a server
  certificate; agents and operator tools pin the CA certificate (``tls/ca.crt``) instead of
  trusting the system store. Plaintext (``--insecure``) is refused unless the hub listens on
  a loopback address, and even then it logs a warning.
* **Operators** send ``authorization: Bearer <token>``. Tokens are 256-bit random strings
  made by ``warden hub init``; ``hub.yaml`` holds only their SHA-256, each with one role:
  ``admin``, ``compliance`` or ``auditor``. Comparison is constant-time.
* **Agents** authenticate as their node on every call by signing it with the node key
  enrolled in the ledger (:mod:`protos.callsig`: method, node id, time, nonce, SHA-256 of the
  exact request bytes). No per-node certificates: the ledger's enrollment and key-rotation
  entries are the one record of which key speaks for which node, and revoking or rotating a
  key takes effect on the next call. The hub accepts a call time within ``clock_skew_s`` of
  its clock and remembers nonces for twice that window (per process — a replay to another
  hub process of the same request is harmless: reads are reads, and appends are idempotent).
* **Enroll** carries its own credentials (the single-use enrollment token, and a signature by
  the enrolling key over node id, token digest and time — proof of possession, checked by
  :func:`hub.handlers.enroll`), so it is open to anonymous callers. The gRPC health service
  is open.
* **Strings** in call metadata (node id, nonce) are bounded by :mod:`hub.limits` before any
  lookup and shown in errors only through :func:`hub.limits.shown`.
* **Every RPC has an entry in** :data:`ACCESS`; a method missing from it is refused, so a new
  RPC is closed until someone decides who may call it.

Failures: no or unknown credentials → :class:`UnauthenticatedError` (gRPC
``UNAUTHENTICATED``); a valid caller whose role is not allowed → :class:`AccessDeniedError`
(``PERMISSION_DENIED``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hub.config import HubConfig
from hub.limits import MAX_CHARS, shown
from hub.tls import hash_token
from protos.callsig import MD_NODE, MD_NONCE, MD_SIGNATURE, MD_TIME, call_message
from trust.errors import AccessDeniedError, SignatureError
from trust.keys import PublicKey
from trust.stream import NodeId

__all__ = [
    "ACCESS",
    "Authenticator",
    "Caller",
    "Principal",
    "UnauthenticatedError",
]


class UnauthenticatedError(AccessDeniedError):
    """The call carries no credentials, or credentials the hub does not accept."""


class Caller(StrEnum):
    """Kinds of caller an RPC may admit."""

    ADMIN = "admin"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"
    NODE = "node"
    ANYONE = "anyone"


_OPERATORS = frozenset({Caller.ADMIN, Caller.COMPLIANCE, Caller.AUDITOR})
_READERS = frozenset({*_OPERATORS, Caller.NODE})

ACCESS: Mapping[str, frozenset[Caller]] = {
    "/warden.v1.PolicyService/Publish": frozenset({Caller.COMPLIANCE}),
    "/warden.v1.PolicyService/Get": _READERS,
    "/warden.v1.PolicyService/Watch": _READERS,
    "/warden.v1.LedgerService/Append": frozenset({Caller.NODE}),
    "/warden.v1.LedgerService/GetCheckpoint": _READERS,
    # Entries carry every region's evidence: operators only.
    "/warden.v1.LedgerService/GetEntries": _OPERATORS,
    "/warden.v1.LedgerService/GetInclusionProof": _READERS,
    "/warden.v1.LedgerService/GetConsistencyProof": _READERS,
    "/warden.v1.EnrollmentService/Enroll": frozenset({Caller.ANYONE}),
    "/warden.v1.EnrollmentService/RotateKey": frozenset({Caller.NODE}),
    "/warden.v1.EnrollmentService/Heartbeat": frozenset({Caller.NODE}),
    "/warden.v1.ApprovalService/Submit": frozenset({Caller.COMPLIANCE}),
    "/warden.v1.ApprovalService/List": _READERS,
    # Root rotations are the root officers' decision; compliance relays them, like bundles.
    "/warden.v1.RootService/Publish": frozenset({Caller.COMPLIANCE}),
    # Every authenticated reader: an agent needs the chain to follow a rotation.
    "/warden.v1.RootService/GetChain": _READERS,
}
"""Method → callers admitted. ``ANYONE`` admits unauthenticated callers."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an operator (with a role), a node, or anonymous."""

    kind: Caller
    name: str

    @property
    def node_id(self) -> NodeId:
        """The node id of a node caller; :class:`AccessDeniedError` for anyone else.

        A node principal exists only after its id was checked and its call signature
        verified under the key enrolled for it, so the name is a valid :data:`NodeId`.
        """
        if self.kind is not Caller.NODE:
            raise AccessDeniedError(f"{self.name} is not a node")
        return NodeId(self.name)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"


ANONYMOUS = Principal(Caller.ANYONE, "anonymous")

NodeKeyLookup = Callable[[str], PublicKey | None]
"""Returns the current enrolled key of a node, or ``None`` for an unknown node."""


class _NonceCache:
    """Nonces seen within the replay window (thread-safe, pruned as it grows)."""

    def __init__(self, window_s: int) -> None:
        self._window = window_s
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, node_id: str, nonce: str, now: float) -> bool:
        """Record a nonce; False if it was already seen inside the window."""
        with self._lock:
            if len(self._seen) > 100_000:
                cutoff = now - self._window
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
            key = (node_id, nonce)
            seen = self._seen.get(key)
            if seen is not None and seen > now - self._window:
                return False
            self._seen[key] = now
            return True


class Authenticator:
    """Turns call metadata (and the raw request bytes) into a :class:`Principal`."""

    def __init__(
        self,
        config: HubConfig,
        node_key: NodeKeyLookup,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._operators = {op.token_sha256: op for op in config.operators}
        self._node_key = node_key
        self._skew = config.clock_skew_s
        self._clock = clock
        self._nonces = _NonceCache(2 * config.clock_skew_s)

    def authenticate(
        self, method: str, metadata: Sequence[tuple[str, str | bytes]], body: bytes
    ) -> Principal:
        """Identify the caller of ``method`` and check it is admitted; raise otherwise."""
        allowed = ACCESS.get(method)
        if allowed is None:
            raise AccessDeniedError(f"method {method} is not open to anyone")
        md: dict[str, str] = {}
        for k, v in metadata:
            md.setdefault(k.lower(), v.decode("latin-1") if isinstance(v, bytes) else v)
        principal = self._identify(method, md, body)
        if principal.kind is Caller.ANYONE:
            if Caller.ANYONE in allowed:
                return principal
            raise UnauthenticatedError(f"{method} needs credentials (a bearer token or a node "
                                       "signature)")
        if principal.kind in allowed or Caller.ANYONE in allowed:
            return principal
        raise AccessDeniedError(
            f"{principal} may not call {method} "
            f"(allowed: {', '.join(sorted(c.value for c in allowed))})"
        )

    def _identify(self, method: str, md: Mapping[str, str], body: bytes) -> Principal:
        auth = md.get("authorization")
        if auth is not None and MD_SIGNATURE in md:
            raise UnauthenticatedError("a call carries either a bearer token or a node "
                                       "signature, not both")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthenticatedError("authorization metadata must be 'Bearer <token>'")
            digest = hash_token(token.strip())
            for known, op in self._operators.items():
                if hmac.compare_digest(known, digest):
                    return Principal(Caller(op.role.value), op.name)
            raise UnauthenticatedError("unknown bearer token")
        if MD_SIGNATURE in md:
            return self._verify_node(method, md, body)
        return ANONYMOUS

    def _verify_node(self, method: str, md: Mapping[str, str], body: bytes) -> Principal:
        node_id = md.get(MD_NODE, "")
        nonce = md.get(MD_NONCE, "")
        if not node_id or not nonce:
            raise UnauthenticatedError(f"node signature needs {MD_NODE} and {MD_NONCE}")
        for field, value in (("node_id", node_id), ("nonce", nonce)):
            if len(value) > MAX_CHARS[field]:
                # Refused (and never echoed) before any lookup: an unauthenticated string.
                raise UnauthenticatedError(
                    f"{field} in call metadata is {len(value)} characters long; the limit is "
                    f"{MAX_CHARS[field]}")
        try:
            t = int(md.get(MD_TIME, ""))
            sig = base64.b64decode(md[MD_SIGNATURE], validate=True)
        except (ValueError, binascii.Error):
            raise UnauthenticatedError(f"malformed {MD_TIME} or {MD_SIGNATURE}") from None
        now = self._clock()
        if abs(now - t) > self._skew:
            raise UnauthenticatedError(
                f"call time {t} is {int(now - t)} s away from the hub clock "
                f"(allowed ±{self._skew} s)", hint="synchronise the node's clock (NTP)")
        key = self._node_key(node_id)
        if key is None:
            raise UnauthenticatedError(f"node {shown(node_id)} is not enrolled (or not active)",
                                       hint="enroll it with a token from 'warden hub token create'")
        try:
            key.verify(sig, call_message(method, node_id, t, nonce, body))
        except SignatureError:
            raise UnauthenticatedError(
                f"call signature does not verify under node {shown(node_id)}'s enrolled key"
            ) from None
        if not self._nonces.add(node_id, nonce, now):
            raise UnauthenticatedError(f"replayed call (nonce {nonce[:12]}… already used)")
        return Principal(Caller.NODE, node_id)

