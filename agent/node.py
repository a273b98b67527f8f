"""A node's identity and directory: ``warden agent init`` and ``warden agent enroll``.

``init`` makes a node directory an operator can move as a whole::

    NODE_DIR/agent.yaml   commented configuration (relative paths: resolved against it)
    NODE_DIR/node.key     the node's ed25519 key, PEM PKCS#8, mode 0600
    NODE_DIR/root.json    the pinned trust root (exact bytes of the file given; verified)
    NODE_DIR/ca.crt       the hub's CA certificate (TLS is pinned to it)
    NODE_DIR/models/      the directory registry

Invariants:

* ``init`` verifies the root (its own root-role threshold, not expired) and that the CA file
  is a PEM certificate before writing anything, and refuses a directory that already holds an
  ``agent.yaml`` or ``node.key``: an existing identity is never overwritten.
* Every file is written whole (temporary file, fsync, rename): an interrupted ``init`` leaves
  no half-written key or config. The key file is 0600 from its first byte.
* ``enroll`` reads the one-time token from a file (a token on the command line is visible in
  ``ps``), proves possession of the node key (:meth:`HubClient.enroll`), checks that the
  hub's enrollment entry is signed by a key of the pinned root's ``hub`` role and names this
  node and key, and pins the hub log's origin from the checkpoint the hub returned (verified
  under the root's hub role) in the witness state.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from agent.config import AgentConfig, check_hub_address
from trust import keys
from trust._internal.files import read_file, replace_file
from trust.cli._common import read_passphrase
from trust.errors import ConfigError, FormatError, SignatureError, UsageError
from trust.hub_event import HubEvent, HubEventKind
from trust.keys import SigningKey
from trust.root import TrustRoot, read_envelope_bytes
from trust.stream import HUB_NODE_ID, check_node_id

__all__ = [
    "AGENT_VERSION",
    "EnrollOutcome",
    "InitResult",
    "enroll_node",
    "hub_client",
    "init_node",
    "load_node_key",
    "read_token",
]

_log = logging.getLogger("warden.agent")


def _version() -> str:
    try:
        return metadata.version("warden")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


AGENT_VERSION = _version()

_CONFIG_TEMPLATE = """\
# agent.yaml — written by `warden agent init`; every key is documented in docs/agent-config.md.
# Relative paths are resolved against this file's directory, so the node directory can move.
node_id: {node_id}              # the node's identity at the hub; signs every record and call
hub: {hub}                      # the hub's gRPC address
{ca_line}
root: root.json                 # the pinned trust root; replaced only by a verified rotation
node_key: node.key              # this node's ed25519 key (0600)
# passphrase_file: /run/secrets/warden-node-key   # if node.key is encrypted
registry: models                # directory registry: models/<name>/<version>/ with READY
policy_name: standard           # the policy bundle this node enforces
# hub_origin: learned from the hub at `warden agent enroll` and pinned in witness.json
log_level: info
# The node's own validation data per model; it never leaves this node (only aggregates do).
models: []
#  - name: credit-risk
#    data: data/credit-validation.parquet
#    label: default
#    sensitive: [sex, age_band]
#    stages: [staging, production]
"""


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    directory: Path
    config: Path
    key_id: str


@dataclass(frozen=True)
class EnrollOutcome:
    """The hub's enrollment entry and the log origin now pinned."""

    index: int
    origin: str


def init_node(
    directory: str | Path,
    *,
    node_id: str,
    hub: str,
    root: str | Path,
    ca: str | Path | None = None,
    insecure: bool = False,
    passphrase: bytes | None = None,
) -> InitResult:
    """Create the node directory (see the module docstring); return its config and key id."""
    nid = check_node_id(node_id, what="--node-id")
    if nid == HUB_NODE_ID:
        raise UsageError(f"--node-id {HUB_NODE_ID!r} is reserved for the hub")
    check_hub_address(hub, where="--hub")
    if ca is None and not insecure:
        raise UsageError("--ca is required (the hub's CA certificate, DIR/tls/ca.crt of "
                         "'warden hub init'), unless --insecure on a loopback hub")
    root_bytes = read_envelope_bytes(root)
    TrustRoot.from_envelope(root_bytes, what=str(root))
    ca_bytes = None
    if ca is not None:
        ca_bytes = read_file(ca, error=UsageError, noun="CA certificate")
        if b"-----BEGIN CERTIFICATE-----" not in ca_bytes:
            raise UsageError(f"{ca}: not a PEM certificate (expected the hub's ca.crt)")
    d = Path(directory)
    for name in ("agent.yaml", "node.key"):
        if (d / name).exists():
            raise UsageError(f"{d / name} already exists; refusing to overwrite a node's "
                             "identity", hint="choose another --dir, or remove the old node")
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        (d / "models").mkdir(exist_ok=True)
        key = keys.generate()
        keys.save_private(key, d / "node.key", passphrase=passphrase)
        replace_file(d / "root.json", root_bytes)
        if ca_bytes is not None:
            replace_file(d / "ca.crt", ca_bytes)
        ca_line = ("ca: ca.crt                      # the hub's CA certificate (TLS pinned)"
                   if ca_bytes is not None else
                   "insecure: true                  # plaintext gRPC: loopback hubs only")
        text = _CONFIG_TEMPLATE.format(node_id=nid, hub=hub, ca_line=ca_line)
        replace_file(d / "agent.yaml", text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{d}: cannot write the node directory ({exc.strerror or exc})") from exc
    return InitResult(d, d / "agent.yaml", key.key_id)


def load_node_key(config: AgentConfig) -> SigningKey:
    """The node's signing key (decrypted with ``passphrase_file`` or the environment)."""
    passphrase = read_passphrase(argparse.Namespace(passphrase_file=config.passphrase_file))
    return keys.load_private(config.node_key, passphrase)


def read_token(path: str | Path) -> str:
    """The one-time enrollment token in ``path`` (surrounding whitespace removed)."""
    data = read_file(path, error=UsageError, noun="token file")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the token file is not UTF-8 text") from None
    if not token or any(c.isspace() for c in token):
        raise UsageError(f"{path}: expected one token (from 'warden hub token create'), "
                         f"got {'nothing' if not token else 'several words'}")
    return token


def hub_client(config: AgentConfig, key: SigningKey | None = None, *, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """A :class:`HubClient` for the configured hub: as the node when ``key`` is given,
    anonymous otherwise (enrollment). Imported lazily: grpc is loaded only when needed."""
    from protos.client import HubClient, NodeIdentity

    ca = None if config.ca is None else read_file(config.ca, error=ConfigError,
                                                  noun="CA certificate")
    node = None if key is None else NodeIdentity(config.node_id, key)
    return HubClient(config.hub, ca_cert=ca, insecure=config.insecure, node=node,
                     timeout=timeout)


def enroll_node(config: AgentConfig, token: str) -> EnrollOutcome:
    """Enroll this node at the hub with ``token``; verify the entry; pin the log origin."""
    from agent.witness import Witness

    key = load_node_key(config)
    root = TrustRoot.load(config.root)
    with hub_client(config) as client:
        result = client.enroll(config.node_id, key, token, agent_version=AGENT_VERSION)
    event = _verify_enrollment(result.envelope, root)
    body = event.body
    if body["node_id"] != config.node_id or body["key_id"] != key.key_id:
        raise SignatureError(
            f"the hub's enrollment entry names node {body['node_id']!r} key {body['key_id']}, "
            f"not {config.node_id!r} key {key.key_id}; refusing it")
    witness = Witness.load(config.witness_path, origin=config.hub_origin)
    witness.pin_origin(result.checkpoint, root)
    assert witness.origin is not None
    return EnrollOutcome(result.index, witness.origin)


def _verify_enrollment(envelope: bytes, root: TrustRoot) -> HubEvent:
    last: Exception | None = None
    for hub_key in root.role_keys("hub").values():
        try:
            event = HubEvent.from_envelope(envelope, hub_key, what="enrollment entry")
        except SignatureError as exc:
            last = exc
            continue
        if event.kind is not HubEventKind.ENROLLMENT:
            raise FormatError(f"the hub answered enrollment with a {event.kind} entry")
        return event
    raise SignatureError("the hub's enrollment entry is not signed by a key of the trust "
                         "root's hub role") from last
