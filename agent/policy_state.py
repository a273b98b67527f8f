"""The agent's policy state: the pinned trust root, its rotation, the last good bundle, and a
signed record of every change.

Nothing the hub sends is trusted: a bundle is verified against the pinned root
(:meth:`PolicyBundle.from_envelope <trust.policy.bundle.PolicyBundle.from_envelope>`: policy
threshold, digests, expiry) plus the rollback rule here; a root N+1 only by root N
(:meth:`TrustRoot.rotate <trust.root.TrustRoot.rotate>`), one step at a time. So a lying hub
can delay governance, never change it.

Files, all inside ``state_dir`` and each replaced whole (:func:`trust._internal.files.
replace_file`: temporary file, fsync, rename, fsync of the directory):

==========================  ===============================================================
``config.root``             the pinned root (exact envelope bytes); replaced on each rotation
``roots/<version>.json``    every root this node has pinned, for audit (never read back)
``policy.bundle``           the last good bundle (exact envelope bytes)
``policy_state.json``       bookkeeping, not trusted for verification: the rollback floor
                            (name, version, payload digest), whose expiry was recorded, and
                            the offers already refused
==========================  ===============================================================

Invariants:

* **Records before actions.** A bundle is applied (file replaced, then swapped in memory) only
  after its ``policy_applied`` record is committed to the outbox; a root is pinned only after
  its ``root_applied`` record. A failed append (disk full) leaves everything as it was.
* **No rollback.** A bundle older than the highest version ever applied is refused
  (``RollbackError``), also after a restart (the floor is the larger of the held bundle's
  version and the one in ``policy_state.json``). The same version is a no-op when it is the
  same signed content (a reconnecting watch resends the current bundle; another set of
  cosignatures changes nothing) and refused when the content differs: a changed policy needs
  a new version.
* **Fail closed.** :meth:`PolicyState.enforceable` returns a bundle only while both it and the
  pinned root are unexpired. An expired pinned root verifies no new bundle (the agent still
  starts and says so). A bundle file that no longer verifies is logged and ignored (not
  enforced), and left in place for inspection; the next applied bundle replaces it.
  :meth:`PolicyState.load` never writes anything, so ``warden agent status`` can call it
  beside a running daemon.
* **Every refusal is said once.** A refused bundle or root gets one ``policy_rejected`` record
  (``evidence.kind`` ``"bundle"`` or ``"root"``, ``reason`` = the error type) and one error log
  line. The same bytes refused under the same pinned root are not recorded again (the watch
  resends on every reconnect, the daemon re-fetches the root chain periodically); the refused
  set is persisted, so a restart does not repeat them either. A bundle of another name than
  ``policy_name`` is not this node's business: ignored with a warning, no record.
* **Expiry is recorded once.** The transition into "expired" of the held bundle (and of the
  pinned root) gets one ``policy_expired`` record and an error log; it is persisted, so a
  restart does not record it again; a newly applied bundle starts afresh.
* **The clock never runs backwards for governance.** :func:`trusted_now` is the system time
  but never earlier than the last record the node wrote; expiry is judged on it, so setting
  the clock back cannot un-expire a bundle or revive an expired root. (The hub does not
  refuse a record time earlier than its predecessor's, so this is the agent's own rule.)

Root rotation reaches the bundle: after the root changes, the held bundle is re-verified under
the new root (the policy keys may have rotated); if it no longer verifies it is dropped from
enforcement with a ``policy_rejected`` record (the rollback floor stays).
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.records import UNKNOWN, policy_subject, root_subject
from trust import dsse
from trust._internal.files import replace_file
from trust.canonical import Sha256, sha256_hex
from trust.errors import ExpiredError, RollbackError, WardenError
from trust.policy.bundle import PolicyBundle, UnverifiedPolicyBundle, read_bundle_file
from trust.record import AuditRecord, EventType, PolicyRef, Subject
from trust.root import RootMetadata, TrustRoot
from trust.timeutil import format_time

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.outbox import Outbox

__all__ = [
    "STATE_FILE",
    "Offer",
    "OfferOutcome",
    "PolicyState",
    "trusted_now",
]

STATE_FILE = "policy_state.json"
ROOTS_DIR = "roots"
_STATE_SCHEMA = "warden.agent-policy-state/v1"
# Refused offers remembered (newest kept): enough for any plausible stream of bad bytes.
_MAX_REFUSED = 256
# Verifying a held bundle "as of" this time checks everything but expiry, so an expired
# bundle can still be loaded and *reported*; enforceable() judges expiry at the real time.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_default_log = logging.getLogger("warden.agent.policy")


class OfferOutcome(StrEnum):
    """What :meth:`PolicyState.offer_bundle` did with the bytes it was offered."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the bundle in force (same signed content): nothing to do
    REJECTED = "rejected"
    IGNORED = "ignored"  # verified, but another bundle name than this node enforces


@dataclass(frozen=True)
class Offer:
    """The outcome of one offered bundle.

    ``record`` is the record written for it (``None`` when none was: unchanged, ignored, or a
    refusal already recorded earlier, then ``duplicate`` is true); ``reason`` is the error type
    of a refusal.
    """

    outcome: OfferOutcome
    version: int | None = None
    reason: str | None = None
    message: str | None = None
    record: AuditRecord | None = None
    duplicate: bool = False


@dataclass
class _Saved:
    """``policy_state.json``: bookkeeping beside the bundle (see the module docstring)."""

    name: str | None = None
    version: int | None = None
    digest: str | None = None
    expired: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        floor = None if self.version is None else {
            "name": self.name, "version": self.version, "digest": self.digest}
        doc = {"schema": _STATE_SCHEMA, "floor": floor, "expiry_recorded": self.expired,
               "refused": self.refused[-_MAX_REFUSED:]}
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def read(cls, path: Path, log: logging.Logger) -> _Saved:
        """The saved state, or an empty one (logged) when the file is missing or unreadable:
        the held bundle still carries the rollback floor then."""
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.error(f"{path}: cannot read the policy state ({exc}); starting from the held "
                      "bundle alone", extra={"fields": {"file": str(path)}})
            return cls()
        try:
            if not isinstance(doc, dict) or doc.get("schema") != _STATE_SCHEMA:
                raise ValueError(f"schema is not {_STATE_SCHEMA!r}")
            floor = doc.get("floor")
            saved = cls(expired=_str_list(doc.get("expiry_recorded")),
                        refused=_str_list(doc.get("refused")))
            if floor is not None:
                if not (isinstance(floor, dict) and isinstance(floor.get("name"), str)
                        and type(floor.get("version")) is int
                        and isinstance(floor.get("digest"), str)):
                    raise ValueError("floor must be {name, version, digest}")
                saved.name, saved.version, saved.digest = (
                    floor["name"], floor["version"], floor["digest"])
            return saved
        except ValueError as exc:
            log.error(f"{path}: not a policy state file ({exc}); starting from the held "
                      "bundle alone", extra={"fields": {"file": str(path)}})
            return cls()


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return list(value)


# Per outbox: whether the clock is currently behind its head (to warn once per episode).
_behind: weakref.WeakKeyDictionary[Outbox, bool] = weakref.WeakKeyDictionary()


def trusted_now(outbox: Outbox, now: datetime, *, log: logging.Logger | None = None) -> datetime:
    """The time governance runs on: ``now``, but never earlier than the outbox head's time.

    Records therefore carry non-decreasing times, and expiry decisions never go backwards: a
    clock set back cannot un-expire a bundle. When the clock first falls behind the head a
    warning is logged (once until it catches up again, then an info line).
    """
    log = log or _default_log
    head = outbox.head().time
    if head is not None and now < head:
        if not _behind.get(outbox, False):
            _behind[outbox] = True
            log.warning(
                f"the system clock ({format_time(now)}) is earlier than the last record "
                f"({format_time(head)}); governing on the last record's time until it catches up",
                extra={"fields": {"clock": format_time(now), "last_record": format_time(head)}})
        return head
    if _behind.pop(outbox, False):
        log.info("the system clock has caught up with the last record",
                 extra={"fields": {"clock": format_time(now)}})
    return now


class PolicyState:
    """The pinned root and the last good bundle of one node. Build with :meth:`load`.

    Not thread-safe: the daemon's main loop owns it.
    """

    def __init__(
        self,
        config: AgentConfig,
        root: TrustRoot,
        bundle: PolicyBundle | None,
        saved: _Saved,
        log: logging.Logger,
    ) -> None:
        self.config = config
        self.root = root
        self.bundle = bundle
        self._saved = saved
        self._log = log
        self._ignored: set[str] = set()

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, config: AgentConfig, *, now: datetime, log: logging.Logger) -> PolicyState:
        """The pinned root and the last good bundle, re-verified; never writes a file.

        A missing or invalid root file raises (the agent cannot govern without one); an
        expired one is loaded and logged (nothing is enforced or accepted until a newer root
        is pinned). A bundle file is re-verified against the root; one that no longer
        verifies, or names another bundle than ``policy_name``, is logged and not held.
        """
        root = TrustRoot.load(config.root, now=now, allow_expired=True)
        if root.expires <= now:
            log.error(f"trust root v{root.version} ({config.root}) expired at "
                      f"{format_time(root.expires)}: no bundle is enforced or accepted until "
                      "a newer root is pinned", extra={"fields": _root_fields(root)})
        saved = _Saved.read(config.state_dir / STATE_FILE, log)
        if saved.name is not None and saved.name != config.policy_name:
            saved = _Saved(expired=saved.expired, refused=saved.refused)
        bundle = _load_bundle(config, root, log)
        if bundle is not None and (
                f"bundle:{_digest_of(_raw(bundle))}@{root.version}" in saved.refused):
            log.error(f"the held policy {bundle.name} v{bundle.version} was rejected (it "
                      "cannot be evaluated): not enforced until a newer bundle arrives",
                      extra={"fields": _bundle_fields(bundle)})
            bundle = None
        if bundle is not None and bundle.manifest.expires <= now:
            log.warning(f"the held policy {bundle.name} v{bundle.version} expired at "
                        f"{format_time(bundle.manifest.expires)}: it is not enforced",
                        extra={"fields": _bundle_fields(bundle)})
        return cls(config, root, bundle, saved, log)

    # -- reading -----------------------------------------------------------------------------

    @property
    def bundle_envelope(self) -> bytes | None:
        """The exact envelope bytes of the held bundle (what ``policy.bundle`` holds)."""
        return None if self.bundle is None else _raw(self.bundle)

    def version(self) -> int | None:
        """The version of the held bundle (None before the first); the watch asks for newer."""
        return None if self.bundle is None else self.bundle.version

    def enforceable(self, now: datetime) -> PolicyBundle | None:
        """The bundle to decide under at ``now`` (a :func:`trusted_now` time), or None: none
        held, it expired, or the pinned root expired (fail closed: no decision, no promotion)."""
        b = self.bundle
        if b is None or b.manifest.expires <= now or self.root.expires <= now:
            return None
        return b

    # -- bundles -----------------------------------------------------------------------------

    def offer_bundle(self, envelope: bytes, outbox: Outbox, *, now: datetime) -> Offer:
        """Verify the exact bundle bytes ``envelope`` and apply them, or refuse them.

        See the module docstring for the rules. Applying writes ``policy_applied`` first,
        then replaces ``policy.bundle``, then swaps the bundle in memory. A refusal writes one
        ``policy_rejected`` record (not again for the same bytes under the same root).
        Storage errors of the outbox propagate with nothing applied.
        """
        held = self.bundle
        if held is not None and envelope == _raw(held):
            return Offer(OfferOutcome.UNCHANGED, held.version)
        digest = _digest_of(envelope)
        key = f"bundle:{digest}@{self.root.version}"
        if key in self._saved.refused:
            self._log.debug("bundle refused before; not recorded again",
                            extra={"fields": {"envelope_sha256": digest}})
            return Offer(OfferOutcome.REJECTED, duplicate=True)
        try:
            bundle = self._verify_offer(envelope, now)
        except WardenError as exc:
            return self._refuse_bundle(envelope, exc, outbox, now=now, key=key)
        if bundle is None:
            return Offer(OfferOutcome.IGNORED)
        if held is not None and bundle.version == held.version and bundle.digest == held.digest:
            # The same signed content with another set of signatures: nothing changes.
            return Offer(OfferOutcome.UNCHANGED, held.version)
        return self._apply_bundle(bundle, envelope, outbox, now=now)

    def _verify_offer(self, envelope: bytes, now: datetime) -> PolicyBundle | None:
        """The verified bundle; None for another name (logged); raises on any failure."""
        root = self.root
        if root.expires <= now:
            raise ExpiredError(
                f"trust root v{root.version} expired at {format_time(root.expires)}: it "
                "verifies no new bundle", hint="the root keys must sign a new root version")
        bundle = PolicyBundle.from_envelope(envelope, root, now=now,
                                            what="bundle offered by the hub")
        if bundle.name != self.config.policy_name:
            if bundle.digest not in self._ignored:
                self._ignored.add(bundle.digest)
                self._log.warning(
                    f"ignoring bundle {bundle.name} v{bundle.version}: this node enforces "
                    f"{self.config.policy_name!r}", extra={"fields": _bundle_fields(bundle)})
            return None
        floor, floor_digest = self._floor()
        if floor is not None and bundle.version < floor:
            raise RollbackError(
                f"bundle {bundle.name} v{bundle.version} is older than the last applied "
                f"version {floor}",
                hint="a replayed old bundle is refused; publish a version ≥ the current one")
        if floor is not None and bundle.version == floor and bundle.digest != floor_digest:
            raise RollbackError(
                f"bundle {bundle.name} v{bundle.version} differs from the applied "
                f"v{floor} (content {bundle.digest[:16]}…, applied {str(floor_digest)[:16]}…)",
                hint="a changed policy needs a new version number")
        return bundle

    def _floor(self) -> tuple[int | None, str | None]:
        """The rollback floor: the highest version applied, and its payload digest."""
        saved, held = self._saved, self.bundle
        if held is not None and (saved.version is None or held.version >= saved.version):
            return held.version, held.digest
        return saved.version, saved.digest

    def _apply_bundle(self, bundle: PolicyBundle, envelope: bytes, outbox: Outbox, *,
                      now: datetime) -> Offer:
        previous = self.bundle
        record = outbox.append(
            event=EventType.POLICY_APPLIED,
            subject=policy_subject(bundle.name, bundle.version, envelope),
            now=now,
            policy=_policy_ref(bundle),
            evidence={
                "kind": "bundle",
                "previous_version": None if previous is None else previous.version,
                "expires": format_time(bundle.manifest.expires),
                "root_version": self.root.version,
                "signers": sorted(bundle.signers),
            },
        )
        try:
            replace_file(self.config.bundle_path, envelope)
        except OSError as exc:
            # Recorded and enforced from now; a restart reloads the previous file and the
            # hub offers this bundle again.
            self._log.error(f"{self.config.bundle_path}: cannot save the applied bundle "
                            f"({exc.strerror or exc}); it is enforced but not kept on disk",
                            extra={"fields": _bundle_fields(bundle)})
        self.bundle = bundle
        self._saved.name, self._saved.version, self._saved.digest = (
            bundle.name, bundle.version, bundle.digest)
        self._save()
        self._log.info(
            f"policy {bundle.name} v{bundle.version} applied (was "
            f"{'none' if previous is None else 'v' + str(previous.version)})",
            extra={"fields": {**_bundle_fields(bundle), "root_version": self.root.version}})
        return Offer(OfferOutcome.APPLIED, bundle.version, record=record)

    def _refuse_bundle(self, envelope: bytes, exc: WardenError, outbox: Outbox, *,
                       now: datetime, key: str) -> Offer:
        name, version = _peek_bundle(envelope)
        record = outbox.append(
            event=EventType.POLICY_REJECTED,
            subject=policy_subject(name, version, envelope),
            now=now,
            evidence={
                "kind": "bundle",
                "reason": type(exc).__name__,
                "message": exc.message,
                "offered_version": version,
                "current_version": self.version(),
                "root_version": self.root.version,
            },
        )
        self._remember_refused(key)
        self._log.error(
            f"policy bundle {name or '<unparsable>'} v{version or '?'} rejected: {exc.message}",
            extra={"fields": {"reason": type(exc).__name__, "offered_version": version,
                              "current_version": self.version(),
                              "envelope_sha256": _digest_of(envelope)}})
        return Offer(OfferOutcome.REJECTED, version, reason=type(exc).__name__,
                     message=exc.message, record=record)

    # -- roots -------------------------------------------------------------------------------

    def offer_roots(self, envelopes: Sequence[bytes], outbox: Outbox, *, now: datetime) -> int:
        """Walk the root chain after the pinned version (exact envelope bytes, ascending) and
        pin each step that root N proves for N+1; return how many were pinned.

        As :meth:`TrustRoot.rotate_chain`: intermediate roots may have expired since, the
        newest one pinned may not (an expired tail is refused). Roots at or below the pinned
        version are skipped. The first step that does not verify (a gap: N+2 without N+1 is
        a :class:`RollbackError`; wrong signers; garbage) stops the walk: the steps before it
        are pinned, it gets one ``policy_rejected`` record (``evidence.kind = "root"``).
        Each pinned step writes ``root_applied`` first, then ``roots/<version>.json`` and
        the root file. Afterwards the held bundle is re-verified under the new root.
        """
        current = self.root
        steps: list[tuple[TrustRoot, bytes]] = []
        failure: tuple[bytes, WardenError] | None = None
        for env in envelopes:
            version = _peek_root_version(env)
            if version is not None and version <= current.version:
                if version == current.version and env != _raw(current):
                    self._log.warning(f"the hub offered a root v{version} that differs from "
                                      "the one pinned; ignored",
                                      extra={"fields": {"envelope_sha256": _digest_of(env)}})
                continue
            try:
                nxt = current.rotate(env, now=now, what=f"root v{version or '?'} from the hub",
                                     check_expiry=False)
            except WardenError as exc:
                failure = (env, exc)
                break
            steps.append((nxt, env))
            current = nxt
        # Pin up to the newest root that is still valid; an expired tail is a freeze attack
        # (or a stale chain) and is refused.
        keep = len(steps)
        while keep and steps[keep - 1][0].expires <= now:
            keep -= 1
        if keep < len(steps) and failure is not None:
            self._log.warning(f"roots v{steps[keep][0].version}..v{steps[-1][0].version} from "
                              "the hub verify but have expired; not pinned")
        elif keep < len(steps):
            last, env = steps[-1]
            failure = (env, ExpiredError(
                f"root v{last.version} from the hub expired at {format_time(last.expires)}: "
                "the newest root of a chain must be current",
                hint="the root keys must sign a new root version"))
        for nxt, env in steps[:keep]:
            self._pin_root(nxt, env, outbox, now=now)
        if failure is not None:
            self._refuse_root(*failure, outbox, now=now)
        if keep:
            self._reverify_bundle(outbox, now=now)
        return keep

    def _pin_root(self, new: TrustRoot, envelope: bytes, outbox: Outbox, *,
                  now: datetime) -> None:
        old = self.root
        outbox.append(
            event=EventType.ROOT_APPLIED,
            subject=root_subject(new.version, envelope),
            now=now,
            evidence={
                "kind": "root",
                "previous_version": old.version,
                "previous_sha256": _digest_of(_raw(old)),
                "expires": format_time(new.expires),
            },
        )
        roots = self.config.state_dir / ROOTS_DIR
        try:
            roots.mkdir(exist_ok=True)
            old_copy = roots / f"{old.version}.json"
            if not old_copy.exists():
                replace_file(old_copy, _raw(old))
            replace_file(roots / f"{new.version}.json", envelope)
            replace_file(self.config.root, envelope)
        except OSError as exc:
            # Recorded and in force from now; a restart loads the previous root and walks the
            # chain from there again.
            self._log.error(f"{self.config.root}: cannot save root v{new.version} "
                            f"({exc.strerror or exc}); it is in force but not kept on disk",
                            extra={"fields": _root_fields(new)})
        self.root = new
        self._log.warning(f"trust root rotated: v{old.version} → v{new.version}",
                          extra={"fields": {**_root_fields(new),
                                            "previous_version": old.version}})

    def _refuse_root(self, envelope: bytes, exc: WardenError, outbox: Outbox, *,
                     now: datetime) -> None:
        digest = _digest_of(envelope)
        key = f"root:{digest}@{self.root.version}"
        if key in self._saved.refused:
            self._log.debug("root refused before; not recorded again",
                            extra={"fields": {"envelope_sha256": digest}})
            return
        version = _peek_root_version(envelope)
        subject = (root_subject(version, envelope) if version is not None
                   else Subject("root", UNKNOWN, digest))
        outbox.append(
            event=EventType.POLICY_REJECTED,
            subject=subject,
            now=now,
            evidence={
                "kind": "root",
                "reason": type(exc).__name__,
                "message": exc.message,
                "offered_version": version,
                "root_version": self.root.version,
            },
        )
        self._remember_refused(key)
        self._log.error(
            f"trust root v{version or '?'} rejected, keeping v{self.root.version}: "
            f"{exc.message}",
            extra={"fields": {"reason": type(exc).__name__, "offered_version": version,
                              "root_version": self.root.version, "envelope_sha256": digest}})

    def _reverify_bundle(self, outbox: Outbox, *, now: datetime) -> None:
        """After a root change: keep the held bundle only if the new root still verifies it."""
        held = self.bundle
        if held is None:
            return
        envelope = _raw(held)
        try:
            self.bundle = PolicyBundle.from_envelope(envelope, self.root, now=_EPOCH,
                                                     what=f"held bundle {held.name}")
            return
        except WardenError as exc:
            error = exc
        self._drop_held(held, error, outbox, now=now,
                        why=f"is not signed by the policy role of root v{self.root.version}")

    def reject_held(self, error: WardenError, outbox: Outbox, *, now: datetime) -> None:
        """The held bundle verified but cannot be enforced (its Rego does not compile, its
        entrypoint is undefined, its input projection misses what the modules read): record
        ``policy_rejected`` and stop enforcing it — fail closed, no promotion — until a newer
        bundle arrives. It stays refused across restarts (``policy_state.json``)."""
        held = self.bundle
        if held is not None:
            self._drop_held(held, error, outbox, now=now, why="cannot be evaluated")

    def _drop_held(self, held: PolicyBundle, error: WardenError, outbox: Outbox, *,
                   now: datetime, why: str) -> None:
        envelope = _raw(held)
        outbox.append(
            event=EventType.POLICY_REJECTED,
            subject=policy_subject(held.name, held.version, envelope),
            now=now,
            policy=_policy_ref(held),
            evidence={
                "kind": "bundle",
                "reason": type(error).__name__,
                "message": error.message,
                "offered_version": held.version,
                "current_version": held.version,
                "root_version": self.root.version,
            },
        )
        self.bundle = None  # fail closed; the rollback floor stays in self._saved
        self._saved.name, self._saved.version, self._saved.digest = (
            held.name, max(held.version, self._saved.version or 0), held.digest)
        self._remember_refused(f"bundle:{_digest_of(envelope)}@{self.root.version}")
        self._log.error(
            f"policy {held.name} v{held.version} {why}: no longer enforced ({error.message})",
            extra={"fields": {**_bundle_fields(held), "reason": type(error).__name__}})

    # -- expiry ------------------------------------------------------------------------------

    def check_expiry(self, outbox: Outbox, *, now: datetime) -> None:
        """Record, once, that the held bundle (or the pinned root) has expired at ``now``.

        One ``policy_expired`` record and one error log per transition, persisted, so neither
        a later call nor a restart repeats them; applying a new bundle starts afresh.
        """
        held = self.bundle
        if held is not None and held.manifest.expires <= now:
            envelope = _raw(held)
            key = f"bundle:{_digest_of(envelope)}"
            if key not in self._saved.expired:
                outbox.append(
                    event=EventType.POLICY_EXPIRED,
                    subject=policy_subject(held.name, held.version, envelope),
                    now=now,
                    policy=_policy_ref(held),
                    evidence={"kind": "bundle", "expires": format_time(held.manifest.expires),
                              "root_version": self.root.version},
                )
                self._saved.expired = [*self._saved.expired[-_MAX_REFUSED:], key]
                self._save()
                self._log.error(
                    f"policy {held.name} v{held.version} expired at "
                    f"{format_time(held.manifest.expires)}: no promotion until a fresh bundle "
                    "arrives", extra={"fields": _bundle_fields(held)})
        root = self.root
        if root.expires <= now:
            envelope = _raw(root)
            key = f"root:{_digest_of(envelope)}"
            if key not in self._saved.expired:
                outbox.append(
                    event=EventType.POLICY_EXPIRED,
                    subject=root_subject(root.version, envelope),
                    now=now,
                    evidence={"kind": "root", "expires": format_time(root.expires)},
                )
                self._saved.expired = [*self._saved.expired[-_MAX_REFUSED:], key]
                self._save()
                self._log.error(
                    f"trust root v{root.version} expired at {format_time(root.expires)}: no "
                    "promotion until a newer root is pinned", extra={"fields": _root_fields(root)})

    # -- internals ---------------------------------------------------------------------------

    def _remember_refused(self, key: str) -> None:
        self._saved.refused = [*self._saved.refused[-(_MAX_REFUSED - 1):], key]
        self._save()

    def _save(self) -> None:
        path = self.config.state_dir / STATE_FILE
        try:
            replace_file(path, self._saved.to_json())
        except OSError as exc:
            self._log.warning(f"{path}: cannot save the policy state ({exc.strerror or exc})",
                              extra={"fields": {"file": str(path)}})


def _load_bundle(config: AgentConfig, root: TrustRoot, log: logging.Logger) -> PolicyBundle | None:
    path = config.bundle_path
    if not path.exists():
        return None
    try:
        data = read_bundle_file(path)
        # Verified as of the epoch: every check but expiry, so an expired bundle is held to
        # be reported; enforceable() never returns it.
        bundle = PolicyBundle.from_envelope(data, root, now=_EPOCH, what=str(path))
    except WardenError as exc:
        log.error(f"{path}: the saved bundle does not verify against trust root "
                  f"v{root.version}; not enforced ({exc.message})",
                  extra={"fields": {"file": str(path), "reason": type(exc).__name__}})
        return None
    if bundle.name != config.policy_name:
        log.error(f"{path}: the saved bundle is {bundle.name!r}, but this node enforces "
                  f"{config.policy_name!r}; not enforced", extra={"fields": {"file": str(path)}})
        return None
    return bundle


def _raw(obj: PolicyBundle | TrustRoot) -> bytes:
    raw = obj.envelope.raw
    assert raw is not None  # both are only built from exact envelope bytes
    return raw


def _digest_of(envelope: bytes) -> Sha256:
    return sha256_hex(dsse.check_bytes(envelope, what="offered envelope"))


def _policy_ref(bundle: PolicyBundle) -> PolicyRef:
    # The bundle digest (of the signed payload): what decision records name as well.
    return PolicyRef(bundle.name, bundle.version, bundle.digest)


def _peek_bundle(envelope: bytes) -> tuple[str | None, int | None]:
    """Name and version of bundle bytes as they claim (unverified: for the record only)."""
    try:
        b = UnverifiedPolicyBundle.from_bytes(envelope)
    except WardenError:
        return None, None
    return b.name, b.version


def _peek_root_version(envelope: bytes) -> int | None:
    """The version root bytes claim (unverified), or None when they do not parse."""
    try:
        return RootMetadata.from_payload(dsse.from_bytes(envelope, what="root").payload).version
    except WardenError:
        return None


def _bundle_fields(bundle: PolicyBundle) -> Mapping[str, Any]:
    return {"policy": bundle.name, "version": bundle.version,
            "expires": format_time(bundle.manifest.expires), "digest": bundle.digest}


def _root_fields(root: TrustRoot) -> Mapping[str, Any]:
    return {"root_version": root.version, "root_expires": format_time(root.expires)}
