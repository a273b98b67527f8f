"""``warden root``: create, sign, inspect, verify and rotate the trust root.

The life of a root: ``init`` writes version 1 (unsigned, or signed with ``--sign``); each root
officer adds a signature with ``sign``; ``verify`` checks the threshold. ``rotate`` writes
version N+1 from N with changed roles; it is valid only once a threshold of N's root keys *and*
of N+1's root keys signed it, which ``verify --trusted OLD`` checks.

Only root keys may sign a root: a key outside the root role (of this version, or of the
previous one given with ``--previous`` while rotating) is refused, as its signature would
count for nothing; ``--force`` adds it anyway, with a warning.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime

from trust import dsse
from trust.cli._common import (
    check_output_path,
    check_signers,
    load_public_keys,
    load_signing_keys_named,
    write_atomic,
)
from trust.cli.main import add_command, add_group
from trust.cli.options import (
    add_force_option,
    add_out_option,
    add_passphrase_option,
    add_signing_options,
)
from trust.errors import FormatError, UsageError
from trust.keys import KeyId, PublicKey
from trust.root import (
    APPROVER_PREFIX,
    ROOT_PAYLOAD_TYPE,
    Role,
    RootMetadata,
    TrustRoot,
    load_envelope,
    read_envelope_bytes,
)
from trust.timeutil import format_time, from_now, parse_time

__all__ = ["register"]

_ROLE_FLAGS = ("root", "policy", "hub")


def _majority(n: int) -> int:
    return n // 2 + 1


def _parse_approvers(specs: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, files = spec.partition("=")
        if not sep or not name or not files:
            raise UsageError(f"--approver {spec!r}: expected ROLE=KEYFILE[,KEYFILE...]")
        out.setdefault(name, []).extend(f for f in files.split(",") if f)
    return out


def _parse_thresholds(specs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not value.isdigit():
            raise UsageError(f"--approver-threshold {spec!r}: expected ROLE=N")
        out[name] = int(value)
    return out


def _roles_from_args(
    args: argparse.Namespace, base: RootMetadata | None
) -> tuple[dict[KeyId, PublicKey], dict[str, Role]]:
    """Roles from flags; roles not given on the command line are carried over from ``base``."""
    role_files: dict[str, list[str]] = {r: getattr(args, f"{r}_key") or [] for r in _ROLE_FLAGS}
    thresholds: dict[str, int] = {
        r: t for r in _ROLE_FLAGS if (t := getattr(args, f"{r}_threshold")) is not None
    }
    for name, files in _parse_approvers(args.approver or []).items():
        role_files[APPROVER_PREFIX + name] = files
    for name, t in _parse_thresholds(args.approver_threshold or []).items():
        thresholds[APPROVER_PREFIX + name] = t
    for role, t in thresholds.items():
        if t < 1:
            raise UsageError(f"threshold of role {role!r} must be at least 1, got {t}")
        has_keys = bool(role_files.get(role)) or (base is not None and role in base.roles)
        if not has_keys:
            raise UsageError(f"a threshold was given for role {role!r}, which has no keys")

    keys: dict[KeyId, PublicKey] = {}
    roles: dict[str, Role] = {}
    carried = dict(base.roles) if base is not None else {}
    for role in dict.fromkeys([*role_files, *carried]):
        files = role_files.get(role) or []
        if files:
            pubs = load_public_keys(files, args)
            ids = tuple(dict.fromkeys(p.key_id for p in pubs))
            keys.update({p.key_id: p for p in pubs})
            default = 1 if role == "hub" else _majority(len(ids))
            roles[role] = Role(ids, thresholds.get(role, default))
        elif base is not None and role in carried:
            old = carried[role]
            roles[role] = Role(old.keyids, thresholds.get(role, old.threshold))
            keys.update({k: base.keys[k] for k in old.keyids})
        elif role in _ROLE_FLAGS:
            raise UsageError(f"--{role}-key is required: the root needs a {role!r} role")
    return keys, roles


def _expiry(args: argparse.Namespace) -> datetime:
    return from_now(args.expires or "365d", what="--expires")


def _root_keyids(meta: RootMetadata) -> frozenset[KeyId]:
    return frozenset(meta.roles["root"].keyids)


def _write_root(
    meta: RootMetadata, args: argparse.Namespace, *, previous: RootMetadata | None = None
) -> None:
    """Sign ``meta`` with ``--sign`` keys (root keys of it, or of ``previous``) and write it."""
    signers = load_signing_keys_named(args.sign or [], args)
    allowed = _root_keyids(meta) | (_root_keyids(previous) if previous else frozenset())
    check_signers(signers, allowed, _root_role_name(meta, previous), force=args.force)
    env = meta.envelope(k for _, k in signers)
    write_atomic(args.out, env.to_json() + b"\n", flag="--out")
    need = meta.roles["root"].threshold
    print(f"wrote {args.out}: root version {meta.version}, expires {format_time(meta.expires)}")
    print(f"signatures: {len(env.signatures)} (root role needs {need})")


def _root_role_name(meta: RootMetadata, previous: RootMetadata | None) -> str:
    name = f"the 'root' role of root v{meta.version}"
    return f"{name} or of root v{previous.version}" if previous is not None else name


def _init(args: argparse.Namespace) -> int:
    check_output_path(args.out)
    expires = _expiry(args)
    keys, roles = _roles_from_args(args, None)
    _write_root(RootMetadata(1, expires, keys, roles), args)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    check_output_path(args.out)
    expires = _expiry(args)
    old = _load_any_root(args.root)
    keys, roles = _roles_from_args(args, old)
    # A rotation needs the old root keys' signatures as well as the new ones'.
    _write_root(RootMetadata(old.version + 1, expires, keys, roles), args, previous=old)
    print(
        f"to take effect, root v{old.version + 1} needs {old.roles['root'].threshold} signature(s) "
        f"from root v{old.version}'s root keys and {roles['root'].threshold} from its own"
    )
    return 0


def _load_any_root(path: str) -> RootMetadata:
    """Read a root's content without trusting it (for building the next version or signing)."""
    env = load_envelope(path)
    if env.payload_type != ROOT_PAYLOAD_TYPE:
        raise FormatError(f"{path}: not a trust root (payloadType {env.payload_type!r})")
    return RootMetadata.from_payload(env.payload, what=path)


def _sign(args: argparse.Namespace) -> int:
    out = args.out or args.root
    check_output_path(out, flag="--out" if args.out else "ROOT")
    env = load_envelope(args.root)
    meta = _load_any_root(args.root)
    previous = None
    if args.previous:
        previous = _load_any_root(args.previous)
        if previous.version != meta.version - 1:
            raise UsageError(
                f"--previous {args.previous}: root version {previous.version} does not precede "
                f"{args.root} (version {meta.version})",
                hint=f"give root version {meta.version - 1}, the one this root rotates from",
            )
    signers = load_signing_keys_named(args.key, args)
    hint = None
    if previous is None and meta.version > 1:
        hint = (
            f"if it is an old root key signing this rotation, pass --previous with root "
            f"v{meta.version - 1}; else sign with a root key, or pass --force"
        )
    allowed = _root_keyids(meta) | (_root_keyids(previous) if previous else frozenset())
    check_signers(signers, allowed, _root_role_name(meta, previous), force=args.force, hint=hint)
    for _, key in signers:
        env = dsse.add_signature(env, key)
    write_atomic(out, env.to_json() + b"\n", flag="--out" if args.out else "ROOT")
    print(f"wrote {out}: root version {meta.version}, {len(env.signatures)} signature(s)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    now = parse_time(args.at, what="--at") if args.at else None
    if args.trusted:
        trusted = TrustRoot.load(args.trusted, now=now, allow_expired=True)
        root = trusted.rotate_chain([read_envelope_bytes(p) for p in args.roots], now=now)
        print(
            f"OK: root v{root.version} follows trusted root v{trusted.version} "
            f"through {len(args.roots)} verified rotation(s)"
        )
    else:
        if len(args.roots) != 1:
            raise UsageError("give one root to verify, or --trusted OLD and the chain after it")
        root = TrustRoot.load(args.roots[0], now=now)
        print(f"OK: root v{root.version} is signed by its root role threshold")
    print(f"expires {format_time(root.expires)}")
    for name, role in sorted(root.meta.roles.items()):
        print(f"  {name:<24} {role.threshold} of {len(role.keyids)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    env = load_envelope(args.root)
    meta = _load_any_root(args.root)
    out = json.loads(meta.to_payload())
    out["signatures"] = [s.keyid for s in env.signatures]
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _add_role_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    for role in _ROLE_FLAGS:
        parser.add_argument(
            f"--{role}-key",
            action="append",
            metavar="KEYFILE",
            required=required,
            help=f"public (or private) key file of a {role} signer; repeat for several",
        )
        parser.add_argument(
            f"--{role}-threshold",
            type=int,
            metavar="N",
            help=f"signatures the {role} role needs (default: majority; hub: 1)",
        )
    parser.add_argument(
        "--approver",
        action="append",
        metavar="ROLE=KEYFILE[,KEYFILE]",
        help="an approver:<ROLE> role and its keys; repeat per role",
    )
    parser.add_argument(
        "--approver-threshold",
        action="append",
        metavar="ROLE=N",
        help="threshold of an approver role",
    )
    parser.add_argument(
        "--expires", metavar="DURATION", help="validity from now, e.g. 365d (default)"
    )
    add_out_option(parser, help="root file to write")
    parser.add_argument(
        "--sign", action="append", metavar="KEYFILE", help="sign right away with this private key"
    )
    add_force_option(parser)
    add_passphrase_option(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden root``."""
    group = add_group(
        subparsers,
        "root",
        "create, sign, verify and rotate the trust root (root.json)",
        __doc__,
    )
    init = add_command(
        group,
        "init",
        _init,
        "write trust root version 1 from officers' public keys",
        "warden root init --root-key r1.key --root-key r2.key --policy-key o1.key "
        "--policy-key o2.key --policy-key o3.key --policy-threshold 2 --hub-key hub.key "
        "--out root.json --sign r1.key",
    )
    _add_role_flags(init, required=True)

    sign = add_command(
        group,
        "sign",
        _sign,
        "add signatures to a root (the payload is never changed)",
        "warden root sign root.json --key r2.key",
    )
    sign.add_argument("root", metavar="ROOT")
    add_signing_options(sign, force=True)
    add_out_option(sign, required=False, help="write here instead of in place")
    sign.add_argument(
        "--previous",
        metavar="ROOT",
        help="the root version this one rotates from: its root keys may sign too",
    )

    verify = add_command(
        group,
        "verify",
        _verify,
        "verify a root (threshold, expiry), or a rotation chain from a trusted root",
        "warden root verify root-v2.json --trusted root.json",
    )
    verify.add_argument(
        "roots", nargs="+", metavar="ROOT", help="root, or the chain after --trusted"
    )
    verify.add_argument("--trusted", metavar="ROOT", help="pinned older root to rotate from")
    verify.add_argument("--at", metavar="TIME", help="verify as of this RFC 3339 time")

    rotate = add_command(
        group,
        "rotate",
        _rotate,
        "write root version N+1 from version N; roles not given are kept",
        "warden root rotate root.json --root-key r3.key --root-key r4.key --out root-v2.json "
        "--sign r1.key --sign r3.key",
    )
    rotate.add_argument("root", metavar="ROOT", help="the current root (version N)")
    _add_role_flags(rotate, required=False)

    show = add_command(
        group, "show", _show, "print a root's content and signers", "warden root show root.json"
    )
    show.add_argument("root", metavar="ROOT")
