"""How Warden errors cross the wire: one table, used by the hub to answer and clients to raise.

The hub turns a :class:`~trust.errors.WardenError` into a gRPC status code from
:data:`STATUS_OF` (the most specific class in the error's MRO wins) and adds two trailing
metadata entries: ``x-warden-error`` (the class name) and, for a sequence gap,
``x-warden-expected-seq``. A client turns them back into the same class, so an agent catches
:class:`~trust.errors.SequenceGapError` with its ``expected`` value, not a bare RpcError.
Anything else a server raises is ``INTERNAL`` with no detail (the hub logs it).
"""

from __future__ import annotations

import grpc

from trust import errors as E

__all__ = [
    "MD_ERROR",
    "MD_EXPECTED_SEQ",
    "STATUS_OF",
    "error_from_status",
    "status_of",
]

MD_ERROR = "x-warden-error"
MD_EXPECTED_SEQ = "x-warden-expected-seq"

STATUS_OF: dict[type[E.WardenError], grpc.StatusCode] = {
    E.WardenError: grpc.StatusCode.INVALID_ARGUMENT,
    E.UsageError: grpc.StatusCode.INVALID_ARGUMENT,
    E.ConfigError: grpc.StatusCode.INVALID_ARGUMENT,
    E.FormatError: grpc.StatusCode.INVALID_ARGUMENT,
    E.KeyError_: grpc.StatusCode.INVALID_ARGUMENT,
    E.TrustError: grpc.StatusCode.INVALID_ARGUMENT,
    E.SignatureError: grpc.StatusCode.INVALID_ARGUMENT,
    E.ThresholdError: grpc.StatusCode.INVALID_ARGUMENT,
    E.DigestMismatchError: grpc.StatusCode.INVALID_ARGUMENT,
    E.ProofError: grpc.StatusCode.INVALID_ARGUMENT,
    E.RollbackError: grpc.StatusCode.FAILED_PRECONDITION,
    E.ExpiredError: grpc.StatusCode.FAILED_PRECONDITION,
    E.PolicyError: grpc.StatusCode.INVALID_ARGUMENT,
    E.LedgerError: grpc.StatusCode.FAILED_PRECONDITION,
    E.ChainBrokenError: grpc.StatusCode.FAILED_PRECONDITION,
    E.SequenceGapError: grpc.StatusCode.FAILED_PRECONDITION,
    E.EquivocationError: grpc.StatusCode.ALREADY_EXISTS,
    # The hub's storage cannot write now: retryable, nothing was written.
    E.StorageUnavailableError: grpc.StatusCode.UNAVAILABLE,
    E.StorageFullError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # Permanent: the same record will never fit, so not a retryable code.
    E.RecordTooLargeError: grpc.StatusCode.INVALID_ARGUMENT,
    E.LimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    E.EnrollmentError: grpc.StatusCode.PERMISSION_DENIED,
    E.CheckError: grpc.StatusCode.INVALID_ARGUMENT,
    E.DataError: grpc.StatusCode.INVALID_ARGUMENT,
    E.TransportError: grpc.StatusCode.UNAVAILABLE,
    E.AccessDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    E.NotFoundError: grpc.StatusCode.NOT_FOUND,
}
"""WardenError class → gRPC status code. Subclasses not listed inherit their parent's code."""

_UNAUTHENTICATED_NAMES = frozenset({"UnauthenticatedError"})

_FALLBACK_BY_CODE: dict[grpc.StatusCode, type[E.WardenError]] = {
    grpc.StatusCode.UNAUTHENTICATED: E.AccessDeniedError,
    grpc.StatusCode.PERMISSION_DENIED: E.AccessDeniedError,
    grpc.StatusCode.NOT_FOUND: E.NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: E.FormatError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: E.LimitExceededError,
    grpc.StatusCode.FAILED_PRECONDITION: E.LedgerError,
    grpc.StatusCode.ALREADY_EXISTS: E.EquivocationError,
}


def status_of(exc: E.WardenError) -> grpc.StatusCode:
    """The status code for ``exc``: that of the nearest class in its MRO found in the table."""
    if type(exc).__name__ in _UNAUTHENTICATED_NAMES:
        return grpc.StatusCode.UNAUTHENTICATED
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def error_from_status(
    code: grpc.StatusCode, details: str, trailing: dict[str, str]
) -> E.WardenError:
    """Rebuild the hub's error on the client side (a :class:`TransportError` if unknown)."""
    name = trailing.get(MD_ERROR, "")
    message = f"hub: {details}" if details else f"hub answered {code.name}"
    cls = getattr(E, name, None) if name in E.__all__ else None
    if cls is E.SequenceGapError:
        try:
            expected = int(trailing.get(MD_EXPECTED_SEQ, ""))
        except ValueError:
            expected = -1
        return E.SequenceGapError(message, expected=expected)
    if isinstance(cls, type) and issubclass(cls, E.WardenError):
        return cls(message)
    if name in _UNAUTHENTICATED_NAMES:
        return E.AccessDeniedError(message)
    fallback = _FALLBACK_BY_CODE.get(code)
    if fallback is not None and name:
        return fallback(message)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return E.TransportError(f"{message} ({code.name})")
    if fallback is not None:
        return fallback(message)
    return E.TransportError(f"{message} ({code.name})")
