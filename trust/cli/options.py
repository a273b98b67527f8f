"""The options many ``warden`` commands share, each declared once: ``--key``, ``--out``,
``--root``, ``--passphrase-file``, ``--force``.

Invariants:

* a shared flag has one spelling, one ``dest``, one metavar and one action everywhere it is
  used: ``--key KEYFILE`` is always repeatable and required, ``--out FILE`` and
  ``--root FILE`` hold a plain path string (the command converts it), so a handler reads
  ``args.key`` / ``args.out`` / ``args.root`` the same way in every group;
* a command may say in its own words what the file is for (``help=``), but not change what
  the flag is;
* this module imports nothing heavy: ``hub`` and ``agent`` register their commands with it at
  every ``warden`` start-up, before any command runs (no ``cryptography``, no ``grpc``).

``WARDEN_KEY_PASSPHRASE`` is only *named* here (for ``--passphrase-file``'s help); it is read
in exactly one place, :func:`trust.cli._common.read_passphrase`.
"""

from __future__ import annotations

import argparse

__all__ = [
    "PASSPHRASE_ENV",
    "add_force_option",
    "add_key_option",
    "add_out_option",
    "add_passphrase_option",
    "add_root_option",
    "add_signing_options",
]

#: The environment variable ``--passphrase-file`` falls back to.
PASSPHRASE_ENV = "WARDEN_KEY_PASSPHRASE"

# argparse.ArgumentParser and the groups of add_argument_group both declare options through
# this base class; a shared option may go into either.
_Options = argparse._ActionsContainer


def add_key_option(parser: _Options, *, help: str | None = None) -> None:
    """``--key KEYFILE`` (``args.key``: a list): a private key to sign with, repeat for several.

    Always required: a signing command without a key has nothing to do. The passphrase for
    the keys comes from :func:`add_passphrase_option`.
    """
    parser.add_argument("--key", action="append", required=True, metavar="KEYFILE", help=help)


def add_signing_options(
    parser: _Options, *, key_help: str | None = None, force: bool = False
) -> None:
    """What every signing command takes: ``--key`` (:func:`add_key_option`), with ``force``
    also ``--force`` (:func:`add_force_option`), and ``--passphrase-file``
    (:func:`add_passphrase_option`) for the keys."""
    add_key_option(parser, help=key_help)
    if force:
        add_force_option(parser)
    add_passphrase_option(parser)


def add_out_option(parser: _Options, *, required: bool = True, help: str | None = None) -> None:
    """``--out FILE`` (``args.out``: a path string, ``None`` when optional and not given).

    The command checks it with :func:`trust.cli._common.check_output_path` before any work
    and writes it only through :func:`trust.cli._common.write_atomic`. Optional where the
    command otherwise updates its input in place or writes nothing.
    """
    parser.add_argument("--out", required=required, metavar="FILE", help=help)


def add_root_option(parser: _Options, *, required: bool, help: str | None = None) -> None:
    """``--root FILE`` (``args.root``: a path string or ``None``): the pinned trust root.

    ``required`` is always stated by the caller: whether a command may run without a root
    to verify against is a security decision, not a default.
    """
    parser.add_argument("--root", required=required, metavar="FILE", help=help)


def add_passphrase_option(parser: _Options) -> None:
    """``--passphrase-file``; ``WARDEN_KEY_PASSPHRASE`` is the fallback."""
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"file holding the key passphrase (else ${PASSPHRASE_ENV}, else none)",
    )


def add_force_option(parser: _Options) -> None:
    """``--force``: add a signature even though the role that would count it lacks the key."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="sign even with a key outside the role that counts the signature (warns)",
    )
