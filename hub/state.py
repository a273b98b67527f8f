"""What one hub process holds while it runs: config, store, keys, trust root, auth, feed.

Built once by :meth:`HubState.open` from a :class:`~hub.config.HubConfig` and passed to every
handler — there is no global. Start-up checks fail with a :class:`ConfigError` naming the file:

* the hub key loads, and is a key of the *current* trust root's ``hub`` role (otherwise no
  agent or auditor could verify a single checkpoint this hub signs);
* the trust root verifies (see below), and the newest one is not expired;
* the database is reachable and takes a write (a probe that is rolled back), so a hub never
  says "serving" and then fails every Append;
* the configured ``origin`` is the origin of the checkpoints already stored: a ledger keeps one
  origin for life (checkpoints under two origins make every consistency proof between them
  verify under neither);
* the record-verifier processes started (:class:`~hub.ledger.verify.RecordVerifier`).

**The trust root is the pinned file plus the ledger's chain.** ``trust_root`` (``root.json``)
is the root the operator pinned; the hub never rewrites it. Rotations published through
RootService (:func:`hub.handlers.publish_root`) are stored in the database (``roots``, with a
``root_publication`` hub event) and the hub's current root is the pinned one followed by every
stored root above its version, each verified from its predecessor with
:meth:`~trust.root.TrustRoot.rotate` (:func:`chain_root`) — at start and, through
:meth:`HubState.current_root`, before each publication, approval and chain read, so a rotation
published by one hub process is in force in every process sharing the database. We chose this
over rewriting ``root.json`` because the database is the one state all hub processes share
and commit together with the ledger entry, while a file rewrite is per host and cannot commit
atomically with the entry; and a tampered database cannot slip a root in, since the chain must
verify from the pinned file exactly as an agent verifies it. Consequences:

* the pinned root may have expired once the chain continues it (TUF: only the newest root
  must be current);
* a stored root of the pinned root's own version must be byte for byte the pinned file
  (otherwise the file and the ledger disagree: a fork, refused at start); stored roots below
  the pinned version are history the file already supersedes;
* replacing ``root.json`` by hand with a newer root skips the ledger: agents can only follow
  roots published through ``warden hub publish-root``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hub import db
from hub.auth import Authenticator
from hub.config import HubConfig
from hub.feed import PolicyFeed
from hub.ledger.store import CheckpointSigner, LedgerStore, StoredCheckpoint, StoredRoot
from hub.ledger.verify import RecordVerifier
from hub.tls import hash_token, new_token
from trust import keys
from trust.canonical import sha256_hex
from trust.errors import ConfigError, NotFoundError, WardenError
from trust.keys import PublicKey, SigningKey
from trust.record import check_node_id
from trust.root import TrustRoot
from trust.stream import NodeId
from trust.timeutil import format_time, parse_duration, utcnow

__all__ = ["HubState", "chain_root", "create_enrollment_token", "load_root"]


@dataclass
class HubState:
    """The shared state of a running hub process."""

    config: HubConfig
    store: LedgerStore
    hub_key: SigningKey
    root: TrustRoot
    auth: Authenticator
    feed: PolicyFeed
    verifier: RecordVerifier = field(default_factory=RecordVerifier)
    stopping: threading.Event = field(default_factory=threading.Event)
    root_lock: threading.RLock = field(default_factory=threading.RLock)
    """Held while :attr:`root` is read from the chain or replaced (one publisher per process;
    the store serialises processes)."""
    _checkpoint_lock: threading.Lock = field(default_factory=threading.Lock)
    _last_signed: float = float("-inf")

    @property
    def database_label(self) -> str:
        """The database URL without credentials (for logs)."""
        url = self.config.database
        if "@" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://…@{rest.split('@', 1)[1]}"
        return url

    @classmethod
    def open(cls, config: HubConfig) -> HubState:
        """Load keys and root, open (and migrate) the store, start the policy feed."""
        hub_key = keys.load_private(config.hub_key)
        pinned = load_root(config)
        where = str(config.source) if config.source else "hub config"
        verifier = RecordVerifier(config.verify_processes)
        try:
            try:
                store = LedgerStore.open(
                    config.database, hub_key=hub_key, verifier=verifier,
                    max_record_bytes=config.max_record_bytes, page_bytes=config.page_bytes,
                )
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
            try:
                _check_origin(config, store, where)
                root = chain_root(pinned, store.roots(0), config=config)
                _check_hub_key(config, hub_key, root)
            except BaseException:
                store.close()
                raise
        except BaseException:
            verifier.close()
            raise

        def node_key(node_id: str) -> PublicKey | None:
            try:
                return store.node_key(NodeId(node_id))
            except NotFoundError:
                return None

        latest = store.latest_policy
        feed = PolicyFeed(lambda: _marker(latest()), config.watch_poll_ms)
        feed.start()
        return cls(config, store, hub_key, root, Authenticator(config, node_key), feed, verifier)

    def current_root(self) -> TrustRoot:
        """The hub's root after every rotation stored so far (by any hub process).

        Stored roots above :attr:`root` are verified one by one from it
        (:meth:`TrustRoot.rotate_chain`, the newest not expired) before :attr:`root` moves on;
        a stored chain that does not verify raises its :class:`~trust.errors.TrustError` and
        leaves :attr:`root` as it was (fail closed: nothing is verified under an unproven root).
        """
        with self.root_lock:
            newer = self.store.roots(self.root.version)
            if newer:
                self.root = self.root.rotate_chain([r.envelope for r in newer], now=self.now())
            return self.root

    def close(self) -> None:
        """Stop the feed, release the store and stop the verifier processes."""
        self.feed.close()
        self.store.close()
        self.verifier.close()

    @property
    def checkpoint_signer(self) -> CheckpointSigner:
        """The hub's checkpoint identity: origin line, key name (= origin) and hub key."""
        return CheckpointSigner(self.config.origin, self.config.origin, self.hub_key)

    def now(self) -> datetime:
        """The hub's clock (UTC)."""
        return utcnow()

    def checkpoint_covering(self, size: int) -> StoredCheckpoint:
        """A signed checkpoint whose tree has at least ``size`` entries.

        If no stored checkpoint covers ``size`` one is signed. With ``checkpoint_interval_ms``
        > 0 this process signs at most once per interval: a caller waits for the next slot
        (and then usually finds a checkpoint another caller signed meanwhile), which bounds
        the checkpoint rate under heavy ingest. Either way an acknowledged record is always
        covered by the checkpoint in its reply.
        """
        cp = self.store.checkpoint_at_least(size)
        if cp is not None:
            return cp
        interval = self.config.checkpoint_interval_ms / 1000
        with self._checkpoint_lock:  # one signer per process; the store serialises processes
            cp = self.store.checkpoint_at_least(size)
            if cp is None and interval:
                time.sleep(max(0.0, self._last_signed + interval - time.monotonic()))
                cp = self.store.checkpoint_at_least(size)
            if cp is None:
                signer = self.checkpoint_signer
                cp = self.store.sign_checkpoint(signer.origin, signer.key_name, signer.key,
                                                now=self.now())
                self._last_signed = time.monotonic()
        if cp is None or cp.size < size:
            raise WardenError(f"no checkpoint covers tree size {size}")  # store invariant broken
        return cp


def _check_origin(config: HubConfig, store: LedgerStore, where: str) -> None:
    """Refuse a configured origin other than the one the ledger's checkpoints carry."""
    latest = store.latest_checkpoint()
    if latest is None or latest.origin == config.origin:
        return
    raise ConfigError(
        f"{where}: origin {config.origin!r} is not the origin {latest.origin!r} of the"
        f" checkpoints stored in {db.url_label(config.database)} (latest size {latest.size})",
        hint=f"set 'origin: {latest.origin}' again in {where}: a ledger keeps one origin for"
             " life; for a new origin start a new ledger (a new database)",
    )


def _marker(record: object) -> object:
    if record is None:
        return None
    return getattr(record, "index", None)


def load_root(config: HubConfig) -> TrustRoot:
    """The hub's pinned root (``trust_root``), verified against its own root role.

    It may have expired: :func:`chain_root` checks that the *newest* root has not.
    """
    if not config.trust_root.exists():
        raise ConfigError(
            f"{config.trust_root}: no trust root",
            hint="copy the officers' root.json there (the hub verifies policies against it)",
        )
    return TrustRoot.load(config.trust_root, allow_expired=True)


def chain_root(pinned: TrustRoot, stored: Sequence[StoredRoot], *, config: HubConfig) -> TrustRoot:
    """The newest root: ``pinned``, then every stored root above its version, each verified
    from its predecessor (see the module docstring). A :class:`ConfigError` names the file
    and the database when they disagree or the chain does not verify."""
    label = db.url_label(config.database)
    raw = pinned.envelope.raw if pinned.envelope.raw is not None else pinned.envelope.to_json()
    for r in stored:
        if r.version == pinned.version and r.digest != sha256_hex(raw):
            raise ConfigError(
                f"{config.trust_root}: trust root v{pinned.version} differs from the v{r.version}"
                f" published in {label} (ledger index {r.index}, digest {r.digest[:16]}…)",
                hint="the pinned root.json and the ledger's root chain fork: pin the root the"
                     " root officers signed",
            )
    newer = [r for r in stored if r.version > pinned.version]
    if not newer:
        # The historic behaviour: the pinned root itself must still be valid.
        return TrustRoot.load(config.trust_root)
    try:
        return pinned.rotate_chain([r.envelope for r in newer])
    except WardenError as exc:
        raise ConfigError(
            f"{label}: the trust roots published there (v{newer[0].version}..v"
            f"{newer[-1].version}) do not verify from {config.trust_root}"
            f" (v{pinned.version}): {exc.message}",
            hint=exc.hint or "pin the root the root officers signed",
        ) from None


def _check_hub_key(config: HubConfig, hub_key: SigningKey, root: TrustRoot) -> None:
    """Refuse to serve with a hub key that the current root's ``hub`` role does not list."""
    if hub_key.key_id not in root.role("hub").keyids:
        raise ConfigError(
            f"{config.hub_key}: hub key {hub_key.key_id[:16]}… is not in the 'hub' role of "
            f"trust root {config.trust_root} (v{root.version})",
            hint="the root officers must add hub.pub to the root's hub role",
        )


def create_enrollment_token(config: HubConfig, node_id: str, ttl: str) -> tuple[str, str]:
    """Make a single-use token for ``node_id``; store only its hash. Returns (token, expiry)."""
    node = check_node_id(node_id, what="--node")
    now = utcnow()
    expires = now + parse_duration(ttl, what="--ttl")
    token = new_token()
    hub_key = keys.load_private(config.hub_key)
    store = LedgerStore.open(config.database, hub_key=hub_key)
    try:
        store.create_token(node, hash_token(token), expires, now=now)
    finally:
        store.close()
    return token, format_time(expires)
