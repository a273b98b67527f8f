"""``warden hub``: create, run and operate a hub.

Commands on the hub host (they read ``hub.yaml`` and the database directly):

* ``warden hub init DIR`` — CA, server certificate, hub key, operator tokens, ``hub.yaml``;
* ``warden hub serve --config hub.yaml`` — run the gRPC service until SIGTERM;
* ``warden hub token create --config hub.yaml --node emea-1 --ttl 24h`` — a single-use
  enrollment token, printed once; only its SHA-256 is stored.

Operator commands (talk to a running hub over TLS with a bearer token):

* ``warden hub publish BUNDLE`` (compliance) — publish a signed policy bundle;
* ``warden hub publish-root ROOT.json`` (compliance) — publish trust root N+1 (signed by root
  N's and its own root role) so agents can follow the rotation; the file is checked to be a
  root envelope here (exit 2 if not), its signatures by the hub (exit 1 if refused);
* ``warden hub checkpoint`` — fetch the latest checkpoint and verify its signature against the
  trust root's ``hub`` role;
* ``warden hub proof inclusion INDEX`` — fetch an RFC 9162 inclusion proof and verify it
  against the verified latest checkpoint;
* ``warden hub proof consistency --from FILE`` (a note saved by ``warden hub checkpoint``) or
  ``OLD_SIZE`` (a size the hub stored a checkpoint of) — verify that the latest checkpoint
  extends the earlier one. The hub signs checkpoints only at the sizes its writes end at and
  cannot list them, so an unknown size is answered with the latest size that does exist;
* ``warden hub entries`` (admin/compliance/auditor) — list ledger entries.

Connection flags: ``--hub HOST:PORT``, ``--ca ca.crt``, ``--token-file FILE``; ``--hub-dir DIR``
fills all three from a directory made by ``warden hub init`` (operator's token by role).

Numbers on the command line are checked by argparse types (:func:`whole_number`,
:func:`seconds`): ledger indexes and sizes are whole numbers the ledger can hold (its rows
are signed 64-bit), timeouts positive and finite — a bad value is a usage error naming the
argument, never a traceback from the protobuf layer.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from trust.cli.argtypes import seconds, whole_number
from trust.cli.main import add_command, add_group
from trust.cli.options import add_root_option
from trust.errors import NotFoundError, ProofError, UsageError, WardenError

__all__ = ["register"]


# Plain text (argparse prints descriptions as they are, so no reStructuredText here).
_GROUP_DESCRIPTION = """\
Create, run and operate a Warden hub.

On the hub host (these read hub.yaml and the database directly):
  init            CA, server certificate, hub key, operator tokens, hub.yaml
  serve           run the gRPC service until SIGTERM
  token create    a single-use enrollment token for a node (only its SHA-256 is stored)

Operator commands (over TLS with a bearer token):
  publish         publish a signed policy bundle (compliance)
  publish-root    publish trust root N+1 so agents can follow the rotation (compliance)
  checkpoint      fetch the latest checkpoint, verified against the root's 'hub' role
  proof           fetch and verify RFC 9162 inclusion and consistency proofs
  entries         list ledger entries

Connection: --hub HOST:PORT, --ca ca.crt, --token-file FILE; or --hub-dir DIR (a directory
made by 'warden hub init') to fill all three."""


def _cmd_init(args: argparse.Namespace) -> int:
    from hub.tls import init_hub

    result = init_hub(
        args.dir,
        origin=args.origin,
        listen=args.listen,
        hosts=args.host or (),
        hub_key=args.hub_key,
        trust_root=args.root,
        database=args.database,
    )
    print(f"hub directory:  {result.directory}")
    print(f"config:         {result.config}")
    print(f"hub key id:     {result.hub_key_id}")
    print(f"hub public key: {result.directory / 'hub.pub'}  (put it in the root's 'hub' role)")
    print(f"CA certificate: {result.ca_cert}  (agents and operators pin this)")
    print("operator tokens (shown once; also saved with mode 0600):")
    for role, token in result.tokens.items():
        print(f"  {role.value:<11} {token}  -> {result.token_files[role]}")
    if args.root is None:
        print(f"next: copy the trust root to {result.directory / 'root.json'}")
    return 0


def _load(args: argparse.Namespace) -> Any:
    from hub.config import load_config

    return load_config(
        args.config,
        overrides={
            "listen": getattr(args, "listen", None),
            "database": getattr(args, "database", None),
            "insecure": True if getattr(args, "insecure", False) else None,
            "log_level": getattr(args, "log_level", None),
        },
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from hub.server import serve
    from trust.logs import setup_logging

    config = _load(args)
    setup_logging(config.log_level)

    def ready(hub: Any) -> None:
        if args.port_file:
            tmp = Path(args.port_file + ".tmp")
            tmp.write_text(f"{hub.port}\n")
            tmp.replace(args.port_file)

    return serve(config, on_ready=ready)


def _cmd_token_create(args: argparse.Namespace) -> int:
    from hub.state import create_enrollment_token
    from trust.record import HUB_NODE_ID, check_node_id

    check_node_id(args.node, what="--node")
    if args.node == HUB_NODE_ID:
        # The hub's own events form the ledger stream of this id; a node enrolled under it
        # could never append and would blur who signed what.
        raise UsageError(f"--node {HUB_NODE_ID!r} is reserved: it is the id of the hub's own "
                         "event stream", hint="choose another node id, e.g. emea-1")
    config = _load(args)
    token, expires = create_enrollment_token(config, args.node, args.ttl)
    print(token)
    print(f"node {args.node}: single-use enrollment token, expires {expires} "
          "(shown once; only its SHA-256 is stored)", file=sys.stderr)
    return 0


# -- operator commands (over gRPC) ---------------------------------------------------------


def _client(args: argparse.Namespace, role: str) -> Any:
    from protos.client import HubClient

    target, ca, token_file = args.hub, args.ca, args.token_file
    if args.hub_dir:
        d = Path(args.hub_dir)
        ca = ca or str(d / "tls" / "ca.crt")
        token_file = token_file or str(d / "tokens" / f"{role}.token")
        if target is None:
            from hub.config import load_config

            target = load_config(d / "hub.yaml", env={}).listen
    if target is None:
        raise UsageError("which hub? pass --hub HOST:PORT (or --hub-dir DIR)")
    token = None
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"{token_file}: cannot read token ({exc.strerror})") from None
    ca_bytes = None
    if not args.insecure:
        if ca is None:
            raise UsageError("pass --ca (the hub's tls/ca.crt) or --insecure for a loopback hub")
        try:
            ca_bytes = Path(ca).read_bytes()
        except OSError as exc:
            raise UsageError(f"{ca}: cannot read CA certificate ({exc.strerror})") from None
    return HubClient(target, ca_cert=ca_bytes, insecure=args.insecure, token=token,
                     timeout=args.timeout)


def _root(args: argparse.Namespace) -> Any:
    from trust.root import TrustRoot

    path = args.root
    if path is None and args.hub_dir:
        path = str(Path(args.hub_dir) / "root.json")
    if path is None:
        raise UsageError("pass --root root.json to verify what the hub returns")
    return TrustRoot.load(path)


def _origin(args: argparse.Namespace) -> str:
    """The checkpoint origin to pin: ``--origin``, else the one in ``--hub-dir``'s hub.yaml."""
    if args.origin:
        return str(args.origin)
    if args.hub_dir:
        from hub.config import load_config

        return load_config(Path(args.hub_dir) / "hub.yaml", env={}).origin
    raise UsageError("which log? pass --origin (the hub's checkpoint origin) or --hub-dir DIR")


def _verified_checkpoint(
    root: Any, note: bytes, origin: str, *, size: int | None = None
) -> Any:
    """The checkpoint in ``note``, verified against ``root`` and ``origin``; if ``size`` is
    given it must be that tree size (a hub answering with another size is refused)."""
    from trust.hub_checkpoint import verify_hub_checkpoint

    cp = verify_hub_checkpoint(root, note, origin=origin)
    if size is not None and cp.size != size:
        raise ProofError(f"asked the hub for the checkpoint of size {size}; it returned size "
                         f"{cp.size}")
    return cp


def _cmd_publish(args: argparse.Namespace) -> int:
    from trust.policy.bundle import load_bundle_file

    env = load_bundle_file(args.bundle)
    data = env.raw if env.raw is not None else env.to_json()
    with _client(args, "compliance") as hub:
        r = hub.publish(data)
    print(f"published {r.name} v{r.version} (digest {r.digest}, revision {r.revision}, "
          f"ledger index {r.index})")
    return 0


def _root_file(path: str) -> bytes:
    """The exact bytes of a root envelope file, checked to *be* one (a DSSE envelope of a
    well-formed root payload) before anything is sent; signatures are the hub's to check."""
    from trust import dsse
    from trust.errors import FormatError
    from trust.root import ROOT_PAYLOAD_TYPE, RootMetadata, read_envelope_bytes

    data = read_envelope_bytes(path)
    env = dsse.from_bytes(data, what=path)
    if env.payload_type != ROOT_PAYLOAD_TYPE:
        raise FormatError(f"{path}: payloadType {env.payload_type!r} is not a trust root"
                          f" ({ROOT_PAYLOAD_TYPE!r})",
                          hint="policy bundles go to 'warden hub publish'")
    RootMetadata.from_payload(env.payload, what=path)
    return data


def _cmd_publish_root(args: argparse.Namespace) -> int:
    data = _root_file(args.root_file)
    with _client(args, "compliance") as hub:
        r = hub.publish_root(data)
    print(f"published trust root v{r.version} (digest {r.digest}, ledger index {r.index})")
    return 0


def _unsigned_size(size: int, latest: int) -> NotFoundError:
    """The error for a tree size the hub stores no checkpoint of (it signs one only at the
    size an append, enrollment or publication ends at, and cannot list them)."""
    return NotFoundError(
        f"the hub stores no checkpoint of tree size {size}; the latest checkpoint has tree size "
        f"{latest}",
        hint="the hub signs checkpoints only at the sizes its writes end at; the latest always "
             "exists: save it ('warden hub checkpoint > seen.note') and later prove the ledger "
             "grew from it with 'warden hub proof consistency --from seen.note'",
    )


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    root, origin = _root(args), _origin(args)
    with _client(args, "auditor") as hub:
        try:
            note = hub.get_checkpoint(args.size)
        except NotFoundError:
            if args.size is None:
                raise
            latest = _verified_checkpoint(root, hub.get_checkpoint(), origin)
            raise _unsigned_size(args.size, latest.size) from None
    cp = _verified_checkpoint(root, note, origin, size=args.size)
    sys.stdout.write(note.decode("utf-8"))
    print(f"verified: {cp.origin} size {cp.size} signed by the trust root's hub key",
          file=sys.stderr)
    return 0


def _cmd_proof_inclusion(args: argparse.Namespace) -> int:
    from trust import merkle

    root, origin = _root(args), _origin(args)
    with _client(args, "auditor") as hub:
        cp = _verified_checkpoint(root, hub.get_checkpoint(), origin)
        if args.index >= cp.size:
            # Asked before fetching the entry, so the answer is about INDEX, not about a
            # GetEntries "start" the user never passed.
            raise NotFoundError(f"INDEX {args.index} is beyond the latest checkpoint (tree size "
                                f"{cp.size}: entries 0 to {cp.size - 1})")
        page = hub.get_entries(args.index, 1)
        proof = hub.inclusion_proof(args.index, cp.size)
    if not page.entries or page.entries[0].index != args.index:
        raise UsageError(f"entry {args.index} is not in the ledger")
    leaf = merkle.leaf_hash(page.entries[0].envelope)
    merkle.verify_inclusion(leaf, args.index, cp.size, list(proof.hashes), cp.root_hash)
    print(f"entry {args.index} is included in the tree of size {cp.size} "
          f"(root {base64.b64encode(cp.root_hash).decode()}); proof of {len(proof.hashes)} hashes "
          "verified")
    return 0


def _saved_checkpoint(root: Any, path: str, origin: str) -> Any:
    """The checkpoint note saved in ``path`` (e.g. by ``warden hub checkpoint > FILE``),
    verified like one fetched from the hub; errors name the file."""
    try:
        note = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read checkpoint note ({exc.strerror})") from None
    try:
        return _verified_checkpoint(root, note, origin)
    except WardenError as exc:
        raise type(exc)(f"{path}: {exc.message}", hint=exc.hint) from None


def _cmd_proof_consistency(args: argparse.Namespace) -> int:
    from trust import merkle

    if args.old_size is not None and args.from_note is not None:
        raise UsageError("pass OLD_SIZE or --from FILE, not both")
    if args.old_size is None and args.from_note is None:
        raise UsageError("pass OLD_SIZE or --from FILE (a checkpoint note saved earlier)",
                         hint="'warden hub checkpoint > seen.note' saves the latest one")
    root, origin = _root(args), _origin(args)
    saved = None if args.from_note is None else _saved_checkpoint(root, args.from_note, origin)
    with _client(args, "auditor") as hub:
        new = _verified_checkpoint(root, hub.get_checkpoint(), origin)
        if saved is not None:
            old = saved
            if old.size > new.size:
                # Checkpoint sizes only grow: a smaller latest one means a rollback or a fork.
                raise ProofError(f"{args.from_note}: checkpoint of tree size {old.size} is "
                                 f"larger than the hub's latest (tree size {new.size})")
        else:
            if args.old_size > new.size:
                raise NotFoundError(f"OLD_SIZE {args.old_size} is beyond the latest checkpoint "
                                    f"(tree size {new.size})")
            try:
                note = hub.get_checkpoint(args.old_size)
            except NotFoundError:
                raise _unsigned_size(args.old_size, new.size) from None
            old = _verified_checkpoint(root, note, origin, size=args.old_size)
        proof = (hub.consistency_proof(old.size, new.size).hashes if old.size < new.size
                 else [])
    merkle.verify_consistency(old.size, new.size, list(proof), old.root_hash, new.root_hash)
    print(f"checkpoint of size {old.size} is a prefix of checkpoint of size {new.size}; "
          f"proof of {len(proof)} hashes verified")
    return 0


def _cmd_entries(args: argparse.Namespace) -> int:
    from trust.timeutil import format_time

    with _client(args, "auditor") as hub:
        page = hub.get_entries(args.start, args.limit)
    for e in page.entries:
        print(json.dumps({"index": e.index, "kind": e.kind, "node_id": e.node_id, "seq": e.seq,
                          "received_at": format_time(e.received_at),
                          "leaf_hash": e.leaf_hash.hex()}))
    print(f"{len(page.entries)} entries; ledger size {page.ledger_size}", file=sys.stderr)
    return 0


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--hub", metavar="HOST:PORT", help="hub address")
    g.add_argument("--ca", metavar="FILE", help="the hub's CA certificate (tls/ca.crt)")
    g.add_argument("--token-file", metavar="FILE", help="operator bearer token file")
    g.add_argument("--hub-dir", metavar="DIR",
                   help="a directory made by 'warden hub init' (fills --hub, --ca, --token-file, "
                        "--root)")
    g.add_argument("--insecure", action="store_true", help="plaintext (loopback hubs only)")
    g.add_argument("--timeout", type=seconds(), default=10.0, metavar="SECONDS",
                   help="seconds per call (default 10)")
    add_root_option(p, required=False, help="trust root to verify checkpoints with")
    p.add_argument("--origin", metavar="ORIGIN",
                   help="the hub's checkpoint origin to pin (default: from --hub-dir's hub.yaml)")


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="hub.yaml", help="hub config file")
    p.add_argument("--database", metavar="URL", help="override 'database'")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``warden hub`` command group."""
    hub = add_group(subparsers, "hub", "run and operate the central hub",
                    description=_GROUP_DESCRIPTION)

    p = add_command(hub, "init", _cmd_init,
                    "create a hub directory: CA, TLS certificate, hub key, tokens, hub.yaml",
                    "warden hub init /etc/warden/hub --origin hub.example.com/ledger")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--origin", default="warden.local/hub",
                   help="checkpoint origin (first line of every checkpoint)")
    p.add_argument("--listen", default="127.0.0.1:7443", help="address to serve on")
    p.add_argument("--host", action="append", metavar="NAME",
                   help="extra DNS name or IP for the server certificate (repeatable)")
    p.add_argument("--hub-key", metavar="FILE", help="use this existing hub key")
    add_root_option(p, required=False, help="copy this trust root in")
    p.add_argument("--database", metavar="URL", help="database URL (default SQLite in DIR)")

    p = add_command(hub, "serve", _cmd_serve, "run the hub until SIGTERM (drains gracefully)",
                    "warden hub serve --config /etc/warden/hub/hub.yaml --listen 0.0.0.0:7443")
    _config_flags(p)
    p.add_argument("--listen", metavar="HOST:PORT", help="override 'listen' (port 0: any free)")
    p.add_argument("--insecure", action="store_true",
                   help="plaintext gRPC (refused unless listening on loopback)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--port-file", metavar="FILE", help="write the bound port here when ready")

    token = add_group(hub, "token", "enrollment tokens")
    p = add_command(token, "create", _cmd_token_create,
                    "create a single-use enrollment token for a node (printed once)",
                    "warden hub token create --config hub.yaml --node emea-1 --ttl 24h")
    _config_flags(p)
    p.add_argument("--node", required=True, metavar="NODE_ID")
    p.add_argument("--ttl", default="24h", help="lifetime, e.g. 24h, 7d (default 24h)")

    p = add_command(hub, "publish", _cmd_publish,
                    "publish a signed policy bundle (compliance role)",
                    "warden hub publish standard-v3.bundle --hub-dir ./hub")
    p.add_argument("bundle", metavar="BUNDLE")
    _connection_flags(p)

    p = add_command(hub, "publish-root", _cmd_publish_root,
                    "publish trust root N+1 (signed by root N's and its own root role) to agents",
                    "warden hub publish-root root-v2.json --hub-dir ./hub")
    p.add_argument("root_file", metavar="ROOT_JSON", help="the new root's envelope (root.json)")
    _connection_flags(p)

    p = add_command(hub, "checkpoint", _cmd_checkpoint,
                    "fetch the latest (or a given size's) checkpoint and verify it",
                    "warden hub checkpoint --hub-dir ./hub --root root.json")
    p.add_argument("--size", type=whole_number(1), metavar="N",
                   help="the stored checkpoint of this tree size")
    _connection_flags(p)

    proof = add_group(hub, "proof", "fetch and verify Merkle proofs")
    p = add_command(proof, "inclusion", _cmd_proof_inclusion,
                    "verify that ledger entry INDEX is in the latest checkpoint",
                    "warden hub proof inclusion 42 --hub-dir ./hub")
    p.add_argument("index", type=whole_number(0), metavar="INDEX")
    _connection_flags(p)
    p = add_command(proof, "consistency", _cmd_proof_consistency,
                    "prove the latest checkpoint extends an earlier one (--from FILE or OLD_SIZE)",
                    "warden hub checkpoint --hub-dir ./hub > seen.note    # today\n"
                    "  warden hub proof consistency --from seen.note --hub-dir ./hub    # later")
    p.add_argument("old_size", type=whole_number(1), metavar="OLD_SIZE", nargs="?",
                   help="a tree size the hub stored a checkpoint of")
    p.add_argument("--from", dest="from_note", metavar="FILE",
                   help="a checkpoint note saved earlier ('warden hub checkpoint > FILE')")
    _connection_flags(p)

    p = add_command(hub, "entries", _cmd_entries, "list ledger entries as JSON lines",
                    "warden hub entries --hub-dir ./hub --start 0 --limit 20")
    p.add_argument("--start", type=whole_number(0), default=0, metavar="INDEX",
                   help="first entry index (default 0)")
    p.add_argument("--limit", type=whole_number(1), default=100, metavar="N",
                   help="at most this many entries (default 100; the hub caps a page)")
    _connection_flags(p)
