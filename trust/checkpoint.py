"""Checkpoints as C2SP signed notes (``c2sp.org/signed-note``, ``c2sp.org/tlog-checkpoint``).

A checkpoint note looks like::

    warden.example/ledger
    1234
    <base64 of the 32-byte RFC 9162 root>

    — warden.example/ledger <base64(key id (4 bytes, big endian) ‖ ed25519 signature)>

The signature covers the note text (every line up to and including the third line's newline,
plus any extension lines), not the blank separator line. An ed25519 key's note key id is
``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``; its verifier key string is
``<name>+<8 hex digits of the key id>+<base64(0x01 ‖ public key)>``.

Invariants:

* Parsing is strict: valid UTF-8, no control characters but newline, a text ending in a
  newline, the text/signature split at the last blank line, well-formed signature lines.
  Anything else is a :class:`FormatError`.
* Verification follows the spec: signatures by keys whose (name, id) pair is unknown are
  ignored; a signature by a known key that does not verify rejects the whole note; a note with
  no verified known signature is rejected (:class:`SignatureError`).
* :func:`parse_checkpoint` gives a :class:`Checkpoint` (parsed, *unverified*);
  :func:`verify_checkpoint` (and :func:`trust.hub_checkpoint.verify_hub_checkpoint`) give a
  :class:`VerifiedCheckpoint`, which only they can build. Code that must rely on a tree head
  asks for a ``VerifiedCheckpoint``; both compare equal when they name the same tree head.
* Warden's checkpoints carry SHA-256 roots, so a root hash that is not 32 bytes is refused
  (c2sp requires the RFC 6962 root; golang.org/x/mod does the same), as is a tree size with a
  leading zero or beyond uint64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import KW_ONLY, InitVar, dataclass

from trust._internal.verified import TOKEN, require_token
from trust.errors import FormatError, ProofError, SignatureError
from trust.keys import PublicKey, SigningKey

__all__ = [
    "ED25519_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "VerifiedCheckpoint",
    "NoteSignature",
    "SignedNote",
    "VerifierKey",
    "check_name",
    "note_key_id",
    "parse_checkpoint",
    "parse_note",
    "parse_signer_key",
    "sign_note",
    "open_note",
    "open_note_keys",
    "sign_checkpoint",
    "verify_checkpoint",
]

ED25519_TYPE = 0x01
MAX_SIGNATURES = 100
_DASH = "\u2014 "
_UINT64_MAX = (1 << 64) - 1
_SIZE = re.compile(r"0|[1-9][0-9]*")


def check_name(name: str, *, what: str = "key name") -> str:
    """``name`` if it is a valid note key name (non-empty, no whitespace, no '+'), else
    :class:`FormatError`. A hub signs under its origin, so an origin must pass this too."""
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise FormatError(f"{what} {name!r} must be non-empty, without spaces or '+'")
    return name


def _b64decode(text: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: invalid base64 {text[:40]!r}") from exc


def _utf8(text: bytes | str, *, what: str) -> str:
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} is not valid UTF-8") from exc


def note_key_id(name: str, public: PublicKey) -> int:
    """The 32-bit note key id of an ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public.raw)
    return int.from_bytes(digest.digest()[:4], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A named ed25519 note verifier key; build with :meth:`parse` or :meth:`of`."""

    name: str
    key_id: int
    public: PublicKey

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.key_id != note_key_id(self.name, self.public):
            raise FormatError(
                f"verifier key {self.name!r}: key id {self.key_id:08x} does not match the key"
            )

    @classmethod
    def of(cls, name: str, public: PublicKey) -> VerifierKey:
        """The verifier key for ``public`` under ``name``."""
        return cls(check_name(name), note_key_id(name, public), public)

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``<name>+<hex key id>+<base64(0x01 ‖ key)>``."""
        parts = text.strip().split("+", 2)  # base64 may itself contain '+'; names may not
        if len(parts) != 3:
            raise FormatError(f"verifier key {text[:60]!r}: expected name+keyid+key")
        name, hex_id, key_b64 = parts
        check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise FormatError(f"verifier key {name!r}: key id {hex_id!r} is not 8 hex digits")
        material = _b64decode(key_b64, what=f"verifier key {name!r}")
        if not material or material[0] != ED25519_TYPE:
            raise FormatError(f"verifier key {name!r}: not an ed25519 (type 0x01) key")
        if len(material) != 33:
            raise FormatError(f"verifier key {name!r}: ed25519 key must be 32 bytes")
        return cls(name, int(hex_id, 16), PublicKey(material[1:]))

    def __str__(self) -> str:
        material = base64.b64encode(bytes([ED25519_TYPE]) + self.public.raw).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{material}"


def parse_signer_key(text: str) -> tuple[str, SigningKey]:
    """Parse a Go-style ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`` signer key."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise FormatError("signer key: expected PRIVATE+KEY+name+keyid+key")
    name, hex_id, key_b64 = parts[2:]
    material = _b64decode(key_b64, what=f"signer key {name!r}")
    if len(material) != 33 or material[0] != ED25519_TYPE:
        raise FormatError(f"signer key {name!r}: not an ed25519 (type 0x01) seed")
    key = SigningKey.from_seed(material[1:])
    VerifierKey(name, int(hex_id, 16), key.public)  # checks name and key id
    return name, key


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 32-bit key id, signature bytes (unverified)."""

    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed, *unverified* note. Use :func:`open_note` to trust its text."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: bytes | str) -> SignedNote:
    """Split a note into text and signature lines without verifying anything."""
    note = _utf8(note, what="signed note")
    if any(ord(c) < 0x20 and c != "\n" for c in note) or "\x7f" in note:
        raise FormatError("signed note contains a control character")
    if not note.endswith("\n"):
        raise FormatError("signed note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise FormatError("signed note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block[:-1].split("\n") if sig_block else []
    if not lines:
        raise FormatError("signed note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"signed note has {len(lines)} signatures; at most {MAX_SIGNATURES}")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise FormatError(f"malformed signature line {line[:60]!r}")
        fields = line[len(_DASH) :].split(" ")
        if len(fields) != 2:
            raise FormatError(f"malformed signature line {line[:60]!r}")
        name, sig_b64 = fields
        check_name(name, what="signature key name")
        raw = _b64decode(sig_b64, what=f"signature by {name!r}")
        if len(raw) < 5:
            raise FormatError(f"signature by {name!r} is too short")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return SignedNote(text, tuple(signatures))


def sign_note(text: str, name: str, key: SigningKey) -> bytes:
    """A signed note of ``text`` (which must end in a newline) with one ed25519 signature."""
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    verifier = VerifierKey.of(name, key.public)
    sig = verifier.key_id.to_bytes(4, "big") + key.sign(text.encode("utf-8"))
    note = f"{text}\n{_DASH}{name} {base64.b64encode(sig).decode('ascii')}\n"
    parse_note(note)  # refuse to emit what we would not accept
    return note.encode("utf-8")


def open_note(note: bytes | str, verifiers: Sequence[VerifierKey]) -> tuple[str, tuple[str, ...]]:
    """Verify a note against ``verifiers``; return its text and the names that signed it.

    Raises :class:`SignatureError` if a known key's signature fails or none verifies.
    """
    text, keys = open_note_keys(note, verifiers)
    names: list[str] = []
    for v in keys:
        if v.name not in names:
            names.append(v.name)
    return text, tuple(names)


def open_note_keys(
    note: bytes | str, verifiers: Sequence[VerifierKey]
) -> tuple[str, tuple[VerifierKey, ...]]:
    """Like :func:`open_note`, but return the distinct verifier keys whose signature verified
    (several keys may sign under one name, so a threshold counts these, never names)."""
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = parsed.text.encode("utf-8")
    verified: list[VerifierKey] = []
    for s in parsed.signatures:
        v = known.get((s.name, s.key_id))
        if v is None:
            continue  # the spec: ignore unknown keys, even if name or id alone matches
        try:
            v.public.verify(s.signature, message)
        except SignatureError as exc:
            raise SignatureError(f"signed note: signature by {s.name!r} does not verify") from exc
        if v not in verified:
            verified.append(v)
    if not verified:
        raise SignatureError("signed note: no signature by a known key")
    return parsed.text, tuple(verified)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A log's tree head: origin, tree size and RFC 9162 root hash (+ opaque extension lines).

    Parsed or built, not verified: see :class:`VerifiedCheckpoint`. Two checkpoints are equal
    when they name the same tree head, whichever of the two types they are.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise FormatError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if not isinstance(self.size, int) or not 0 <= self.size <= _UINT64_MAX:
            raise FormatError(f"checkpoint size {self.size!r} is not a uint64")
        if len(self.root_hash) != 32:
            raise FormatError(f"checkpoint root hash has {len(self.root_hash)} bytes, not 32")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise FormatError(f"checkpoint extension line {ext!r} must be one non-empty line")

    def _head(self) -> tuple[str, int, bytes, tuple[str, ...]]:
        return (self.origin, self.size, self.root_hash, self.extensions)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Checkpoint):
            return NotImplemented
        return self._head() == other._head()

    def __hash__(self) -> int:
        return hash(self._head())

    def text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))


@dataclass(frozen=True, eq=False)
class VerifiedCheckpoint(Checkpoint):
    """A checkpoint whose note signature verified. Built only by :func:`verify_checkpoint`
    and :func:`trust.hub_checkpoint.verify_hub_checkpoint`.

    ``signers`` are the distinct verifier keys whose signature verified.
    """

    _: KW_ONLY
    signers: tuple[VerifierKey, ...] = ()
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "verify_checkpoint")
        super().__post_init__()

    @classmethod
    def _verified(
        cls, cp: Checkpoint, signers: Sequence[VerifierKey], *, token: object
    ) -> VerifiedCheckpoint:
        """``cp`` marked verified by ``signers``; ``token`` must be the construction token."""
        return cls(
            cp.origin, cp.size, cp.root_hash, cp.extensions, signers=tuple(signers), _token=token
        )


def parse_checkpoint(text: str | bytes) -> Checkpoint:
    """Parse a checkpoint note *text* (the signed body, not the whole note)."""
    text = _utf8(text, what="checkpoint")
    if not text.endswith("\n"):
        raise FormatError("checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(f"checkpoint has {len(lines)} lines; at least 3 are required")
    origin, size_text, root_b64, *extensions = lines
    if not origin:
        raise FormatError("checkpoint origin line is empty")
    if not _SIZE.fullmatch(size_text) or int(size_text) > _UINT64_MAX:
        raise FormatError(f"checkpoint size {size_text[:30]!r} is not a decimal uint64")
    root_hash = _b64decode(root_b64, what="checkpoint root hash")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, name: str, key: SigningKey) -> bytes:
    """The signed note of ``cp`` under key ``name`` (by convention the log's origin)."""
    return sign_note(cp.text(), name, key)


def verify_checkpoint(
    note: bytes | str, name: str, public: PublicKey, origin: str | None = None
) -> VerifiedCheckpoint:
    """Verify a checkpoint note signed by ``public`` under ``name`` and parse it.

    Raises :class:`SignatureError` if the signature is absent or invalid, :class:`FormatError`
    if the note or body is malformed, and :class:`ProofError` if the origin is not ``origin``.
    """
    text, signers = open_note_keys(note, [VerifierKey.of(name, public)])
    cp = parse_checkpoint(text)
    if origin is not None and cp.origin != origin:
        raise ProofError(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    return VerifiedCheckpoint._verified(cp, signers, token=TOKEN)
