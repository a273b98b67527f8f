"""``warden hub``: create, run and operate a hub.

Commands on the hub host (they read ``hub.yaml`` and the database directly):

* ``warden hub init DIR`` — CA, server certificate, hub key, operator tokens, ``hub.yaml``;
* ``warden hub serve --config hub.yaml`` — run the gRPC service until SIGTERM;
* ``warden hub token create --config hub.yaml --node emea-1 --ttl 24h`` — a single-use
  enrollment token, printed once; only its SHA-256 is stored.

Operator commands (talk to a running hub over TLS with a bearer token):

* ``warden hub publish BUNDLE`` (compliance) — publish a signed policy bundle;
* ``warden hub checkpoint`` — fetch the latest checkpoint and verify its signature against the
  trust root's ``hub`` role;
* ``warden hub proof inclusion INDEX`` / ``warden hub proof consistency OLD_SIZE`` — fetch an
  RFC 9162 proof and verify it against a verified checkpoint;
* ``warden hub entries`` (admin/compliance/auditor) — list ledger entries.

Connection flags: ``--hub HOST:PORT``, ``--ca ca.crt``, ``--token-file FILE``; ``--hub-dir DIR``
fills all three from a directory made by ``warden hub init`` (operator's token by role).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from trust.cli.main import add_command, add_group
from trust.errors import ProofError, UsageError

__all__ = ["register"]


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
    from hub.logs import setup_logging
    from hub.server import serve

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
    from hub.checkpoints import verify_hub_checkpoint

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


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    with _client(args, "auditor") as hub:
        note = hub.get_checkpoint(args.size)
    cp = _verified_checkpoint(_root(args), note, _origin(args), size=args.size)
    sys.stdout.write(note.decode("utf-8"))
    print(f"verified: {cp.origin} size {cp.size} signed by the trust root's hub key",
          file=sys.stderr)
    return 0


def _cmd_proof_inclusion(args: argparse.Namespace) -> int:
    from trust import merkle

    root, origin = _root(args), _origin(args)
    with _client(args, "auditor") as hub:
        cp = _verified_checkpoint(root, hub.get_checkpoint(), origin)
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


def _cmd_proof_consistency(args: argparse.Namespace) -> int:
    from trust import merkle

    root, origin = _root(args), _origin(args)
    with _client(args, "auditor") as hub:
        old = _verified_checkpoint(root, hub.get_checkpoint(args.old_size), origin,
                                   size=args.old_size)
        new = _verified_checkpoint(root, hub.get_checkpoint(), origin)
        proof = hub.consistency_proof(old.size, new.size)
    merkle.verify_consistency(old.size, new.size, list(proof.hashes), old.root_hash,
                              new.root_hash)
    print(f"checkpoint of size {old.size} is a prefix of checkpoint of size {new.size}; "
          f"proof of {len(proof.hashes)} hashes verified")
    return 0


def _cmd_entries(args: argparse.Namespace) -> int:
    with _client(args, "auditor") as hub:
        page = hub.get_entries(args.start, args.limit)
    for e in page.entries:
        print(json.dumps({"index": e.index, "kind": e.kind, "node_id": e.node_id, "seq": e.seq,
                          "received_at": e.received_at, "leaf_hash": e.leaf_hash.hex()}))
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
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    p.add_argument("--root", metavar="root.json", help="trust root to verify checkpoints with")
    p.add_argument("--origin", metavar="ORIGIN",
                   help="the hub's checkpoint origin to pin (default: from --hub-dir's hub.yaml)")


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="hub.yaml", help="hub config file")
    p.add_argument("--database", metavar="URL", help="override 'database'")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``warden hub`` command group."""
    hub = add_group(subparsers, "hub", "run and operate the central hub",
                    description=__doc__.split("\n\n")[0] if __doc__ else None)

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
    p.add_argument("--root", metavar="root.json", help="copy this trust root in")
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

    p = add_command(hub, "checkpoint", _cmd_checkpoint,
                    "fetch the latest (or a given size's) checkpoint and verify it",
                    "warden hub checkpoint --hub-dir ./hub --root root.json")
    p.add_argument("--size", type=int, help="a stored checkpoint of this tree size")
    _connection_flags(p)

    proof = add_group(hub, "proof", "fetch and verify Merkle proofs")
    p = add_command(proof, "inclusion", _cmd_proof_inclusion,
                    "verify that ledger entry INDEX is in the latest checkpoint",
                    "warden hub proof inclusion 42 --hub-dir ./hub")
    p.add_argument("index", type=int, metavar="INDEX")
    _connection_flags(p)
    p = add_command(proof, "consistency", _cmd_proof_consistency,
                    "verify that the checkpoint of OLD_SIZE is a prefix of the latest one",
                    "warden hub proof consistency 10 --hub-dir ./hub")
    p.add_argument("old_size", type=int, metavar="OLD_SIZE")
    _connection_flags(p)

    p = add_command(hub, "entries", _cmd_entries, "list ledger entries as JSON lines",
                    "warden hub entries --hub-dir ./hub --start 0 --limit 20")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    _connection_flags(p)
