"""Helpers shared by the ``warden`` command modules: keys, passphrases, signers, output files.

The shared option *declarations* (``--key``, ``--out``, ``--root``, ``--passphrase-file``,
``--force``) live in the light :mod:`trust.cli.options` (re-exported here); this module reads
what they hold, and imports ``trust.keys`` (``cryptography``) to do so.

Invariants the commands rely on:

* an output path is checked (:func:`check_output_path`) before any work is done, and written
  only through :func:`write_atomic`: a temporary file beside it, fsynced, then renamed — a
  reader sees the old file or the new one, never half of one;
* ``WARDEN_KEY_PASSPHRASE`` is read here only (:func:`read_passphrase`), nowhere else;
* a passphrase that is set but empty (``--passphrase-file`` of an empty file, or
  ``WARDEN_KEY_PASSPHRASE=``) is refused, never read as "no passphrase";
* a signature by a key outside the role that counts it is refused before it is added
  (:func:`check_signers`), unless the user says ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from trust import keys
from trust._internal.files import write_temp_beside
from trust.cli.options import PASSPHRASE_ENV, add_force_option, add_passphrase_option
from trust.errors import UsageError

__all__ = [
    "PASSPHRASE_ENV",
    "add_passphrase_option",
    "read_passphrase",
    "load_signing_keys",
    "load_signing_keys_named",
    "load_public_keys",
    "add_force_option",
    "check_signers",
    "check_output_path",
    "write_atomic",
]


def read_passphrase(args: argparse.Namespace) -> bytes | None:
    """The passphrase from ``--passphrase-file`` or the environment, if any.

    Set-but-empty is an error in both places: an empty ``WARDEN_KEY_PASSPHRASE`` used to mean
    "none", so ``key generate`` silently wrote an unencrypted key for a user who believed they
    had set one.
    """
    path = getattr(args, "passphrase_file", None)
    if path:
        try:
            value = Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read passphrase file ({exc.strerror})") from exc
        if not value:
            raise UsageError(
                f"--passphrase-file {path}: the file is empty; refusing an empty passphrase",
                hint="write the passphrase into the file, or leave out --passphrase-file",
            )
        return value
    env = os.environ.get(PASSPHRASE_ENV)
    if env is None:
        return None
    if not env:
        raise UsageError(
            f"${PASSPHRASE_ENV} is set but empty; refusing an empty passphrase",
            hint=f"set it to the passphrase, or unset it (unset {PASSPHRASE_ENV}) for none",
        )
    return env.encode("utf-8")


def load_signing_keys_named(
    paths: Sequence[str], args: argparse.Namespace
) -> list[tuple[str, keys.SigningKey]]:
    """Each private key file with the key loaded from it (one passphrase for all, if any)."""
    passphrase = read_passphrase(args)
    return [(p, keys.load_private(p, passphrase)) for p in paths]


def load_signing_keys(paths: Sequence[str], args: argparse.Namespace) -> list[keys.SigningKey]:
    """Load each private key file (all with the same passphrase, if any)."""
    return [k for _, k in load_signing_keys_named(paths, args)]


def load_public_keys(paths: Sequence[str], args: argparse.Namespace) -> list[keys.PublicKey]:
    """Public keys from PEM files: public key files, or private key files (decrypted with the
    passphrase from ``args`` when they are encrypted)."""
    passphrase = read_passphrase(args)
    return [keys.load_public(p, passphrase) for p in paths]


def check_signers(
    signers: Sequence[tuple[str, keys.SigningKey]],
    allowed: Collection[keys.KeyId],
    role: str,
    *,
    force: bool,
    hint: str | None = None,
) -> None:
    """Refuse a key whose signature would count for nothing: it is not in ``role``.

    ``role`` names the role for the message (e.g. ``"the 'policy' role of root v1"``). With
    ``force`` the signature is allowed and a warning goes to stderr instead. ``hint`` replaces
    the default hint.
    """
    for path, key in signers:
        if key.key_id in allowed:
            continue
        message = (
            f"{path}: key {key.key_id} is not in {role}; its signature would count for nothing"
        )
        if not force:
            raise UsageError(
                message,
                hint=hint or "sign with a key of that role, or pass --force to add it anyway",
            )
        print(f"warning: {message} (added anyway: --force)", file=sys.stderr)


def check_output_path(path: str | os.PathLike[str], *, flag: str | None = "--out") -> Path:
    """Refuse an output path that cannot become a file, before any work is done.

    A directory (``--out .``), a path ending in a separator, or a file in a directory that
    does not exist is a :class:`UsageError` naming ``flag`` (the option or argument that gave
    the path; ``None`` for none) and the path.
    """
    text = os.fspath(path)
    target = Path(text)
    named = f"{flag} " if flag else ""
    hint = f"give the path of the file to write, e.g. {named}{target / 'NAME'}"
    if text and target.is_dir():
        raise UsageError(f"{named}{text}: is a directory, not a file", hint=hint)
    # A rename would swap a device (/dev/null), a FIFO or a socket for a plain file, for
    # everyone on the machine: only a regular file, or nothing yet, may be replaced.
    if text and os.path.lexists(text) and not target.is_symlink() and not target.is_file():
        raise UsageError(f"{named}{text}: not a regular file; Warden writes only regular files",
                         hint=hint)
    if text and target.is_symlink():
        raise UsageError(f"{named}{text}: is a symbolic link; give the file's real path "
                         f"({os.path.realpath(text)})")
    if not text or target.name in ("", ".", "..") or text.endswith(("/", os.sep)):
        raise UsageError(f"{named}{text!r}: not a file name", hint=hint)
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"{named}{text}: directory {parent} does not exist")
    return target


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, flag: str | None = None
) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never a half-written file.

    The path is checked first (:func:`check_output_path`); ``flag`` names the option that gave
    it in errors (commands call :func:`check_output_path` with it before doing any work).
    """
    target = check_output_path(path, flag=flag)
    try:
        tmp = write_temp_beside(target, data, mode)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
