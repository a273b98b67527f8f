"""Warden's exception hierarchy: one root, split by fault.

Every error Warden raises on purpose derives from :class:`WardenError`. The CLI catches the
root once, prints ``error: <reason>`` (plus a hint when there is one) and exits with the
error's ``exit_code``:

* ``2`` — the user's input is wrong (a bad file, flag, field or value): fix it and retry;
* ``1`` — the input is well-formed but fails verification or policy: the answer is "no".

Security paths raise and never return a boolean a caller could forget to read.
"""

from __future__ import annotations

__all__ = [
    "WardenError",
    "UsageError",
    "ConfigError",
    "FormatError",
    "KeyError_",
    "TrustError",
    "SignatureError",
    "ThresholdError",
    "RollbackError",
    "ExpiredError",
    "DigestMismatchError",
    "ProofError",
    "UnverifiedError",
    "PolicyError",
    "LedgerError",
    "ChainBrokenError",
    "SequenceGapError",
    "EquivocationError",
    "StorageUnavailableError",
    "StorageFullError",
    "RecordTooLargeError",
    "LimitExceededError",
    "EnrollmentError",
    "CheckError",
    "DataError",
    "TransportError",
    "AccessDeniedError",
    "NotFoundError",
]

EXIT_USER_ERROR = 2
EXIT_VERIFICATION_FAILED = 1


class WardenError(Exception):
    """Root of every error Warden raises deliberately.

    ``hint`` is an optional second line telling the user what to do next.
    """

    exit_code: int = EXIT_USER_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message plus the hint, formatted for a terminal."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(WardenError):
    """A command was called with missing or contradictory arguments."""


class ConfigError(WardenError):
    """A configuration file, environment variable or flag is invalid."""


class FormatError(WardenError):
    """A file or message is malformed: not JSON, bad base64, a missing or unknown field."""


class KeyError_(WardenError):  # noqa: N801 - the builtin KeyError is a different thing
    """A key file cannot be used: unreadable, garbled, wrong passphrase, wrong kind of key."""


class TrustError(WardenError):
    """Something failed verification. The data is well-formed but must not be trusted."""

    exit_code = EXIT_VERIFICATION_FAILED


class SignatureError(TrustError):
    """A signature does not verify, or no signature from a trusted key is present."""


class ThresholdError(TrustError):
    """Valid signatures exist but fewer distinct trusted keys signed than the role requires."""


class RollbackError(TrustError):
    """A version is older than (or, where required, not exactly next after) the accepted one."""


class ExpiredError(TrustError):
    """Signed metadata is past its ``expires`` time (freeze-attack protection)."""


class DigestMismatchError(TrustError):
    """Content does not hash to the digest its signed manifest commits to."""


class ProofError(TrustError):
    """A Merkle inclusion or consistency proof, or a checkpoint, does not verify."""


class UnverifiedError(TrustError):
    """An object that did not go through verification was offered where only a verified one
    may be used: a verified type built directly, or an unverified policy bundle given to the
    engine's verified path."""


class PolicyError(WardenError):
    """A policy bundle cannot be built, compiled or evaluated. Never an ``allow``."""


class LedgerError(WardenError):
    """The ledger refused an operation or found itself inconsistent."""


class ChainBrokenError(LedgerError):
    """A hash link (``prev`` or the chain hash) does not match its predecessor."""

    exit_code = EXIT_VERIFICATION_FAILED


class SequenceGapError(LedgerError):
    """A node's record skips a sequence number; ``expected`` is the next valid one."""

    def __init__(self, message: str, *, expected: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.expected = expected


class EquivocationError(LedgerError):
    """A node signed two different records with the same sequence number."""

    exit_code = EXIT_VERIFICATION_FAILED


class StorageUnavailableError(LedgerError):
    """The hub's database cannot take writes right now (read-only, unreachable): retry later.

    Nothing was written; the condition is the operator's to fix, not the caller's.
    """


class StorageFullError(StorageUnavailableError):
    """The hub's database or its disk is full: retry once the operator has freed space."""


class LimitExceededError(UsageError):
    """A server-side limit was reached (open streams, reply size): ask for less or retry later.

    The message names the limit and its value.
    """


class RecordTooLargeError(FormatError):
    """A record's envelope is larger than the hub accepts (``max_record_bytes``)."""


class EnrollmentError(WardenError):
    """A node enrollment or key rotation was refused (bad, reused or expired token...)."""


class CheckError(WardenError):
    """A validation check cannot be computed from the inputs given."""


class DataError(CheckError):
    """Input data is unusable: missing column, wrong dtype, empty file, non-binary labels."""


class TransportError(WardenError):
    """The hub could not be reached or answered with a transport-level failure."""


class AccessDeniedError(WardenError):
    """The caller is not authenticated, or its role does not allow the operation."""


class NotFoundError(WardenError):
    """A named object (bundle version, ledger entry, node) does not exist."""
