"""The construction token that keeps verified types verified.

``AuditRecord``, ``HubEvent``, ``TrustRoot``, ``PolicyBundle``, ``Approval`` and
``VerifiedCheckpoint`` are frozen dataclasses whose ``__post_init__`` calls
:func:`require_token`: only code holding :data:`TOKEN` — their own verifying constructors —
can build one. Calling the dataclass directly, or ``dataclasses.replace`` on an instance (the
token is an ``InitVar``, so ``replace`` does not carry it over), raises
:class:`~trust.errors.UnverifiedError`.

Python cannot stop a determined caller (``object.__new__`` works on anything); the token
stops the honest mistake of building a "verified" object from fields nobody verified, which
is the mistake sigstore-python's ``Bundle`` guards against in the same way.
"""

from __future__ import annotations

from typing import Final

from trust.errors import UnverifiedError

__all__ = ["TOKEN", "require_token"]


class _Token:
    """The one instance, :data:`TOKEN`, is the proof a verifying constructor ran."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<trust verified-construction token>"


TOKEN: Final = _Token()


def require_token(token: object, cls: type, constructor: str) -> None:
    """Raise :class:`UnverifiedError` unless ``token`` is :data:`TOKEN`.

    ``constructor`` names the verifying constructor a caller should use instead.
    """
    if token is not TOKEN:
        raise UnverifiedError(
            f"{cls.__name__} is built only by {constructor}, which verifies it first",
            hint=f"call {constructor} with the exact signed bytes",
        )
