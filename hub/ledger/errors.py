"""Ledger-specific refinements of Warden's errors (all subclasses of :mod:`trust.errors`).

They let the transport map each refusal to its own status and message while callers that
only care about the broad fault keep catching the base class.
"""

from __future__ import annotations

from trust.errors import AccessDeniedError, EnrollmentError

__all__ = [
    "NodeNotEnrolledError",
    "TokenUnknownError",
    "TokenUsedError",
    "TokenExpiredError",
    "TokenNodeMismatchError",
    "AlreadyEnrolledError",
]


class NodeNotEnrolledError(AccessDeniedError):
    """The calling node has no enrolled key (or was revoked): it may not append."""


class AlreadyEnrolledError(EnrollmentError):
    """The node id already has an enrolled key; rotate the key instead of enrolling again."""


class TokenUnknownError(EnrollmentError):
    """No enrollment token with this hash was ever created."""


class TokenUsedError(EnrollmentError):
    """The enrollment token was already consumed (tokens are single use)."""


class TokenExpiredError(EnrollmentError):
    """The enrollment token is past its expiry time."""


class TokenNodeMismatchError(EnrollmentError):
    """The enrollment token was issued for a different node id."""
