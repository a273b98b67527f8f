"""Helpers shared by the ``warden`` command modules: key loading, passphrases, output files."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from trust import keys
from trust.errors import UsageError

__all__ = [
    "PASSPHRASE_ENV",
    "add_passphrase_option",
    "read_passphrase",
    "load_signing_keys",
    "load_public_keys",
    "write_atomic",
]

PASSPHRASE_ENV = "WARDEN_KEY_PASSPHRASE"


def add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    """``--passphrase-file``; ``WARDEN_KEY_PASSPHRASE`` is the fallback."""
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"file holding the key passphrase (else ${PASSPHRASE_ENV}, else none)",
    )


def read_passphrase(args: argparse.Namespace) -> bytes | None:
    """The passphrase from ``--passphrase-file`` or the environment, if any."""
    path = getattr(args, "passphrase_file", None)
    if path:
        try:
            return Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read passphrase file ({exc.strerror})") from exc
    env = os.environ.get(PASSPHRASE_ENV)
    return env.encode("utf-8") if env else None


def load_signing_keys(paths: Sequence[str], args: argparse.Namespace) -> list[keys.SigningKey]:
    """Load each private key file (all with the same passphrase, if any)."""
    passphrase = read_passphrase(args)
    return [keys.load_private(p, passphrase) for p in paths]


def load_public_keys(paths: Sequence[str], args: argparse.Namespace) -> list[keys.PublicKey]:
    """Public keys from PEM files: public key files, or private key files (decrypted with the
    passphrase from ``args`` when they are encrypted)."""
    passphrase = read_passphrase(args)
    return [keys.load_public(p, passphrase) for p in paths]


def write_atomic(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never a half-written file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{target}: cannot write ({exc.strerror})") from exc
