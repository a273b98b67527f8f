"""DSSE v1 envelopes: sign bytes, carry them verbatim, verify against a threshold.

Spec: https://github.com/secure-systems-lab/dsse (protocol.md, envelope.md).

Invariants:

* Signatures cover ``PAE(payloadType, payload)`` exactly as the spec defines it, never a
  re-serialisation of the payload's contents.
* Parsing is strict: unknown fields, non-string values and non-canonical base64 (which would
  let two different envelopes carry the same bytes) are :class:`FormatError`.
* Verification counts *distinct trusted key ids* with a valid signature: a key that signs twice
  counts once, signatures by unknown keys are ignored, and zero valid signatures is a
  :class:`SignatureError`. Fewer than the threshold is a :class:`ThresholdError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trust._internal.fields import check_fields, check_non_empty_str, check_payload_type
from trust.canonical import loads_strict
from trust.errors import FormatError, SignatureError, ThresholdError
from trust.keys import KeyId, PublicKey, SigningKey

__all__ = [
    "Envelope",
    "Signature",
    "pae",
    "sign",
    "add_signature",
    "verify",
    "check_bytes",
    "from_bytes",
]

_ENVELOPE_FIELDS = ("payloadType", "payload", "signatures")  # required, in reporting order
_SIGNATURE_OPTIONAL = ("keyid",)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64decode_strict(text: Any, *, what: str) -> bytes:
    """Decode standard base64 and insist the text is the canonical encoding of the result.

    Python's decoder ignores the unused low bits of the last character, so ``...A==`` and
    ``...B==`` decode alike; accepting both would make an envelope malleable.
    """
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: invalid base64 ({exc})") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(f"{what}: non-canonical base64")
    return raw


@dataclass(frozen=True)
class Signature:
    """One signature of an envelope: the signer's key id and the 64 signature bytes."""

    keyid: KeyId
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope. ``raw`` keeps the exact bytes it was parsed from, if any."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = ()
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: bytes | str, *, what: str = "envelope") -> Envelope:
        """Parse an envelope strictly; ``what`` names the source (a file path) in errors."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        obj = loads_strict(raw, what=f"{what}: not a DSSE envelope")
        return cls.from_dict(obj, what=what, raw=raw)

    @classmethod
    def from_dict(cls, obj: Any, *, what: str = "envelope", raw: bytes | None = None) -> Envelope:
        """Build from a parsed JSON object, with the same strictness as :meth:`from_json`."""
        check_fields(
            obj,
            _ENVELOPE_FIELDS,
            what=what,
            noun="envelope field",
            not_object=f"{what}: a DSSE envelope must be a JSON object",
        )
        payload_type = check_non_empty_str(obj["payloadType"], what=f"{what}: field 'payloadType'")
        payload = _b64decode_strict(obj["payload"], what=f"{what}: field 'payload'")
        sigs_obj = obj["signatures"]
        if not isinstance(sigs_obj, list):
            raise FormatError(f"{what}: field 'signatures' must be a list")
        signatures = []
        for i, s in enumerate(sigs_obj):
            where = f"{what}: signatures[{i}]"
            check_fields(s, ("sig",), _SIGNATURE_OPTIONAL, what=where)
            keyid = s.get("keyid", "")
            if not isinstance(keyid, str):
                raise FormatError(f"{where}: field 'keyid' must be a string")
            sig = _b64decode_strict(s["sig"], what=f"{where}: field 'sig'")
            signatures.append(Signature(KeyId(keyid), sig))
        return cls(payload_type, payload, tuple(signatures), raw)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }

    def to_json(self) -> bytes:
        """Compact JSON with sorted keys: deterministic for the same envelope."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode("ascii")

    @property
    def signer_ids(self) -> tuple[KeyId, ...]:
        """Key ids named by the signatures, in order (unverified)."""
        return tuple(s.keyid for s in self.signatures)


def check_bytes(data: object, *, what: str = "envelope") -> bytes:
    """``data`` if it is ``bytes``; anything else (a parsed :class:`Envelope`, text) is a
    :class:`FormatError`. Verifying constructors take only the exact bytes received, so what
    is verified, stored and hashed is that byte string, never a re-encoding."""
    if not isinstance(data, bytes):
        raise FormatError(
            f"{what}: expected the exact envelope bytes, got {type(data).__name__}",
            hint="pass the bytes as read or received (for an Envelope built here: .to_json())",
        )
    return data


def from_bytes(data: bytes, *, what: str = "envelope") -> Envelope:
    """Parse the exact envelope bytes a verifying constructor was handed (see
    :func:`check_bytes`); the envelope keeps them as ``raw``."""
    return Envelope.from_json(check_bytes(data, what=what), what=what)


def sign(payload_type: str, payload: bytes, keys: Iterable[SigningKey]) -> Envelope:
    """A new envelope over ``payload`` signed by each of ``keys``."""
    env = Envelope(payload_type, bytes(payload))
    for key in keys:
        env = add_signature(env, key)
    return env


def add_signature(envelope: Envelope, key: SigningKey) -> Envelope:
    """``envelope`` with one more signature by ``key``; the payload is left untouched.

    Adding a key that already signed replaces nothing and adds nothing.
    """
    if key.key_id in envelope.signer_ids:
        return envelope
    sig = Signature(key.key_id, key.sign(pae(envelope.payload_type, envelope.payload)))
    return replace(envelope, signatures=(*envelope.signatures, sig), raw=None)


def verify(
    envelope: Envelope,
    trusted: Mapping[KeyId, PublicKey],
    threshold: int,
    *,
    payload_type: str | None = None,
    what: str = "envelope",
) -> frozenset[KeyId]:
    """Verify ``envelope`` and return the distinct trusted key ids whose signature is valid.

    Raises :class:`FormatError` if ``payload_type`` is given and differs,
    :class:`SignatureError` if no trusted key produced a valid signature, and
    :class:`ThresholdError` if fewer than ``threshold`` distinct trusted keys did.
    """
    if threshold < 1:
        raise ThresholdError(f"{what}: a threshold must be at least 1, got {threshold}")
    if payload_type is not None:
        check_payload_type(envelope.payload_type, payload_type, what=what)
    message = pae(envelope.payload_type, envelope.payload)
    valid: set[KeyId] = set()
    for s in envelope.signatures:
        key = trusted.get(s.keyid)
        if key is None or s.keyid in valid:
            continue  # unknown signers are ignored; a second signature by one key counts once
        try:
            key.verify(s.sig, message)
        except SignatureError:
            continue
        valid.add(s.keyid)
    if not valid:
        raise SignatureError(f"{what}: no valid signature from a trusted key")
    if len(valid) < threshold:
        raise ThresholdError(
            f"{what}: {len(valid)} valid signature(s) from trusted keys, {threshold} required"
        )
    return frozenset(valid)
