"""ed25519 keys: generation, PEM files, key ids.

Invariants:

* A key id is the lowercase hex SHA-256 of the 32 raw public-key bytes — the same for
  everyone who holds the public key, whatever file format carried it.
* Private keys are written as PEM PKCS#8, optionally encrypted with a passphrase, to files
  created with mode 0600 (never world- or group-readable, not even for an instant).
* Loading never guesses: a public key where a private one is expected, a non-ed25519 key,
  a garbled PEM or a wrong passphrase each raise :class:`KeyError_` naming the file.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NewType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust._internal.files import read_file, write_temp_beside
from trust.errors import FormatError, KeyError_, SignatureError

__all__ = [
    "KeyId",
    "PublicKey",
    "SigningKey",
    "generate",
    "key_id_of",
    "load_private",
    "load_public",
    "save_private",
    "save_public",
]

KeyId = NewType("KeyId", str)
"""Lowercase hex SHA-256 of a 32-byte raw ed25519 public key."""


def key_id_of(raw: bytes) -> KeyId:
    """The key id of a raw 32-byte ed25519 public key."""
    if len(raw) != 32:
        raise FormatError(f"an ed25519 public key has 32 bytes, got {len(raw)}")
    return KeyId(hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class PublicKey:
    """An ed25519 public key and its key id."""

    raw: bytes

    def __post_init__(self) -> None:
        key_id_of(self.raw)  # validates the length
        try:
            Ed25519PublicKey.from_public_bytes(self.raw)
        except ValueError as exc:
            raise FormatError(f"not an ed25519 public key: {exc}") from exc

    @cached_property
    def key_id(self) -> KeyId:
        """Lowercase hex SHA-256 of the raw key bytes."""
        return key_id_of(self.raw)

    def __reduce__(self) -> tuple[type[PublicKey], tuple[bytes]]:
        # Pickle (e.g. to verifier worker processes) as the raw bytes, without cached objects.
        return (PublicKey, (self.raw,))

    @cached_property
    def _verifier(self) -> Ed25519PublicKey:
        # Built once per key: the ledger verifies thousands of records under one node key.
        return Ed25519PublicKey.from_public_bytes(self.raw)

    @property
    def b64(self) -> str:
        """Standard base64 of the raw key bytes (the form used in ``root.json``)."""
        return base64.b64encode(self.raw).decode("ascii")

    @classmethod
    def from_b64(cls, text: str, *, what: str = "public key") -> PublicKey:
        """Decode a base64 raw public key, naming ``what`` in errors."""
        try:
            raw = base64.b64decode(text, validate=True)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"{what}: invalid base64") from exc
        if len(raw) != 32:
            raise FormatError(f"{what}: expected 32 raw bytes, got {len(raw)}")
        return cls(raw)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid over ``data``."""
        try:
            self._verifier.verify(signature, data)
        except InvalidSignature as exc:
            raise SignatureError(f"signature by key {self.key_id[:16]}… does not verify") from exc

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class SigningKey:
    """An ed25519 private key. Not a dataclass: it must never be printed or compared."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @property
    def key_id(self) -> KeyId:
        """The key id of the public half."""
        return self.public.key_id

    def sign(self, data: bytes) -> bytes:
        """A 64-byte ed25519 signature over ``data``."""
        return self._key.sign(data)

    def raw_private(self) -> bytes:
        """The 32-byte seed (for deterministic test fixtures only)."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from a 32-byte seed (golden vectors and tests)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PEM PKCS#8, encrypted with ``passphrase`` when given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id[:16]}…)"


def generate() -> SigningKey:
    """A fresh random ed25519 key."""
    return SigningKey(Ed25519PrivateKey.generate())


def _write_exclusive(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write a key file whole or not at all: a temporary file (mode 0600 from the start,
    then ``mode``) beside ``path``, fsynced, then hard-linked into place — ``link`` fails if
    ``path`` exists, so an existing key is never replaced unless ``overwrite``."""
    if not overwrite and os.path.lexists(path):
        raise KeyError_(f"{path}: already exists; refusing to overwrite a key")
    try:
        tmp = write_temp_beside(path, data, mode)
    except OSError as exc:
        raise KeyError_(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_replace(tmp, path)
    except FileExistsError as exc:
        raise KeyError_(f"{path}: already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyError_(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_replace(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` unless ``path`` exists (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links here (some network and FUSE file systems): claim the name
        # exclusively, then swap the complete file in over the empty placeholder.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(tmp, path)


def save_private(
    key: SigningKey, path: str | Path, *, passphrase: bytes | None = None, overwrite: bool = False
) -> None:
    """Write ``key`` as PEM PKCS#8 to ``path``, mode 0600; encrypted when given a passphrase."""
    if passphrase is not None and not passphrase:
        raise KeyError_(f"{path}: refusing an empty passphrase; give a real one or none at all")
    _write_exclusive(Path(path), key.to_pem(passphrase), 0o600, overwrite=overwrite)


def save_public(key: PublicKey, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``key`` as a SubjectPublicKeyInfo PEM (mode 0644)."""
    _write_exclusive(Path(path), key.to_pem(), 0o644, overwrite=overwrite)


def _read(path: Path) -> bytes:
    return read_file(path, error=KeyError_, noun="key file")


def load_private(path: str | Path, passphrase: bytes | None = None) -> SigningKey:
    """Load an ed25519 private key from a PEM PKCS#8 file."""
    p = Path(path)
    data = _read(p)
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise KeyError_(
            f"{p}: holds a public key, but a private key is needed here",
            hint="pass the officer's private key file (from 'warden key generate')",
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        # cryptography raises TypeError when a passphrase is missing or superfluous.
        if passphrase is None:
            raise KeyError_(
                f"{p}: key is encrypted; a passphrase is needed",
                hint="set WARDEN_KEY_PASSPHRASE or pass --passphrase-file",
            ) from exc
        raise KeyError_(f"{p}: key is not encrypted, but a passphrase was given") from exc
    except ValueError as exc:
        if passphrase is not None and b"ENCRYPTED" in data:
            raise KeyError_(f"{p}: wrong passphrase (or corrupted encrypted key)") from exc
        raise KeyError_(f"{p}: not a readable PEM private key (truncated or garbled)") from exc
    except Exception as exc:  # noqa: BLE001 - the PEM parser raises assorted types on garbage
        raise KeyError_(f"{p}: not a readable PEM private key ({type(exc).__name__})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{p}: not an ed25519 key ({type(key).__name__})")
    return SigningKey(key)


def load_public(path: str | Path, passphrase: bytes | None = None) -> PublicKey:
    """Load an ed25519 public key from a PEM file.

    A private key file yields its public half (decrypted with ``passphrase`` if encrypted).
    """
    p = Path(path)
    data = _read(p)
    if b"PRIVATE KEY-----" in data:
        return load_private(p, passphrase).public
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as exc:  # noqa: BLE001 - the PEM parser raises assorted types on garbage
        raise KeyError_(f"{p}: not a readable PEM public key (truncated or garbled)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{p}: not an ed25519 key ({type(key).__name__})")
    return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
