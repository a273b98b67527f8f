"""Limits on every string the hub accepts from the network, in one table.

Invariants this module keeps for the hub:

* a string field from a request or call metadata is checked against :data:`MAX_CHARS` at the
  edge (servicers, handlers, authentication) before it reaches storage, a query or an error;
  a longer value is refused with a :class:`~trust.errors.FormatError` naming the field and
  the limit, never stored and never truncated silently;
* an error message shows a caller's value only through :func:`shown`, which cuts it to
  :data:`SHOWN_CHARS` characters, so no input — however long — is echoed back in full (a
  megabyte echoed into a status message makes gRPC drop the stream).

Limits are in characters (Python ``str`` length). They are generous for every legitimate value:
node ids and bundle names are at most 128 characters by their own patterns
(:mod:`trust.record`, :mod:`trust.policy.bundle`), enrollment tokens about 50.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from trust.errors import FormatError

__all__ = ["MAX_CHARS", "SHOWN_CHARS", "bounded", "bounded_optional", "shown"]

MAX_CHARS: Final[Mapping[str, int]] = MappingProxyType({
    # Identities: the node-id pattern allows 128 characters; metadata nonces are 32 hex.
    "node_id": 128,
    "nonce": 128,
    "token": 128,
    # What an agent reports about itself (Heartbeat, Enroll).
    "agent_version": 128,
    "policy_name": 128,
    # PolicyService: a bundle name and an ETag-like revision ("name:version:digest16").
    "name": 128,
    "revision": 256,
    # ApprovalService: an approver role and a subject (by convention "model:version").
    "role": 128,
    "subject": 256,
})
"""Request field → the longest value (in characters) the hub accepts."""

SHOWN_CHARS: Final = 64
"""How many characters of a caller's value an error message shows."""


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters plus an ellipsis and the full length.

    The one way a caller's value goes into an error message.
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


def bounded(field: str, value: str) -> str:
    """``value`` if it fits the limit of ``field``; :class:`FormatError` naming both if not."""
    limit = MAX_CHARS[field]  # a KeyError here is a programming error: every field is listed
    if len(value) > limit:
        raise FormatError(
            f"{field} is {len(value)} characters long; the limit is {limit} "
            f"(starts {shown(value[:16])})")
    return value


def bounded_optional(field: str, value: str | None) -> str | None:
    """:func:`bounded` for an optional field (``None`` passes)."""
    return None if value is None else bounded(field, value)
