"""``warden key``: generate and inspect ed25519 officer, hub and node keys."""

from __future__ import annotations

import argparse
import json

from trust import keys
from trust.cli._common import check_output_path, read_passphrase
from trust.cli.main import add_command, add_group
from trust.cli.options import add_out_option, add_passphrase_option
from trust.errors import KeyError_, UsageError

__all__ = ["register"]


def _generate(args: argparse.Namespace) -> int:
    outputs = [check_output_path(args.out)]
    if args.public_out:
        outputs.append(check_output_path(args.public_out, flag="--public-out"))
    # Both files are refused up front, so a failure never leaves a private key without its pair.
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise UsageError("--out and --public-out name the same file")
    for out in outputs:
        if out.exists():
            raise KeyError_(f"{out}: already exists; refusing to overwrite a key")
    passphrase = read_passphrase(args)  # before any file is written: an empty one is refused
    key = keys.generate()
    keys.save_private(key, args.out, passphrase=passphrase)
    if args.public_out:
        keys.save_public(key.public, args.public_out)
    _print_key(args.out, key.public, args.json)
    return 0


def _show(args: argparse.Namespace) -> int:
    _print_key(args.file, keys.load_public(args.file, read_passphrase(args)), args.json)
    return 0


def _print_key(path: str, public: keys.PublicKey, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": path, "key_id": public.key_id, "public": public.b64}))
    else:
        print(f"key id:     {public.key_id}")
        print(f"public key: {public.b64}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden key``."""
    group = add_group(subparsers, "key", "generate and inspect ed25519 keys")
    gen = add_command(
        group,
        "generate",
        _generate,
        "generate an ed25519 key (PEM PKCS#8, mode 0600) and print its key id",
        "warden key generate --out officer1.key",
    )
    add_out_option(gen, help="private key file to create")
    gen.add_argument("--public-out", metavar="FILE", help="also write the public key PEM here")
    gen.add_argument("--json", action="store_true", help="print JSON")
    add_passphrase_option(gen)

    show = add_command(
        group,
        "show",
        _show,
        "print the key id and public key of a private or public key file",
        "warden key show officer1.key",
    )
    show.add_argument("file", metavar="FILE")
    show.add_argument("--json", action="store_true", help="print JSON")
    add_passphrase_option(show)
