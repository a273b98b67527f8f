"""The agent as a witness of the hub's log: verify, remember, prove, and catch the hub lying.

The hub signs tree heads (checkpoints, :mod:`trust.checkpoint`) of one append-only Merkle log
(RFC 9162). A :class:`Witness` keeps the last checkpoint it verified and checks every newer
one against it, and proves that each of the node's own records is in the log, at the index
the hub acknowledged, byte for byte, before the outbox may forget it:

1. :meth:`Witness.pin_origin` (at enrollment) pins the log's origin from the checkpoint the
   hub returned, verified under the trust root's ``hub`` role; that checkpoint is the first
   one kept.
2. :meth:`Witness.observe_checkpoint` verifies a checkpoint under the pinned origin and the
   root's hub role (:func:`trust.hub_checkpoint.verify_hub_checkpoint`), then: a smaller tree
   than the last is a **rollback**; the same size with another root a **fork**; a larger tree
   must come with a consistency proof from the last one (:func:`trust.merkle.
   verify_consistency`), else it is **inconsistent**. Only a consistent checkpoint is kept.
3. :meth:`Witness.prove_records` asks for the inclusion proof of each acknowledged, unproved
   outbox record under a kept checkpoint and checks it for the leaf hash *the agent computes*
   from its own envelope bytes (``SHA-256(0x00 ‖ envelope)``), never the hub's: a hub that
   dropped, moved or rewrote the record cannot produce it (**record_not_included**). Only then
   is the record marked proved, so :meth:`agent.outbox.Outbox.prune` may delete it.
4. Acknowledgements that contradict each other or go backwards (:meth:`Outbox.
   acknowledge_many` raises :class:`~trust.errors.LedgerError`) are an **ack_conflict**
   (:meth:`Witness.ack_conflict`); a hub that answers "not found" for an index or a size its
   own signed checkpoint covers is **proof_refused**.

Invariants:

* A finding (:class:`Misbehaviour`) halts the witness: ``halted`` is persisted *before* the
  record is written, and while halted nothing is marked proved (:meth:`can_prune` is false),
  so no record the hub may have lost is ever deleted. Rounds still verify and log.
* Each distinct finding becomes exactly one ``hub_misbehaviour`` audit record
  (:data:`~trust.record.EventType.HUB_MISBEHAVIOUR`, subject :func:`agent.records.
  hub_subject` of the tree head the hub showed), appended to the outbox (so it is pushed to
  the hub when possible, and kept locally until then). Its evidence holds the kind, a detail
  line and the signed checkpoint notes involved (hub-signed, public), never the node's data.
  A finding the outbox could not take (disk full) stays in the witness state and is written
  on the next round. The same lie seen again is logged, not recorded again.
* Only the hub's lies are findings. The hub being away (:class:`~trust.errors.
  TransportError`) or refusing a call is not; nor is a checkpoint that does not verify under
  the pinned root (no hub-role signature proves nothing about what the hub signed, and a hub
  key rotation this node has not applied yet looks the same): it is logged, never kept, and
  nothing is proved under it. Either way records stay in the outbox (fail closed).
* The state (``witness.json`` in the state directory: origin, last kept checkpoint note, halt,
  findings) is written whole (:func:`trust._internal.files.replace_file`) whenever it changes,
  so across restarts the hub cannot show this node two checkpoints of one size or a smaller
  tree than one it showed before. A configured ``hub_origin`` that differs from the pinned one
  is a :class:`~trust.errors.ConfigError`; a damaged file a :class:`~trust.errors.FormatError`
  naming it (never silently replaced: that would forget the checkpoint the hub is held to).
* The last checkpoint is re-read from the agent's own state file, which it wrote after
  verifying it; it is not re-verified on load (after a hub key rotation the old note no longer
  verifies under the new root, yet still binds the hub).

Clearing a halt is an operator's decision, after investigating the finding (``warden agent
status`` shows it, the ``hub_misbehaviour`` record holds the evidence). There is no command
for it on purpose; with the daemon stopped::

    python -c "from pathlib import Path; from agent.witness import Witness; \\
               Witness.load(Path('STATE_DIR/witness.json'), origin=None).clear_halt()"

Imports stay light (no grpc, no NumPy): this runs in the idle daemon.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.records import hub_subject
from trust import merkle
from trust.checkpoint import Checkpoint, VerifiedCheckpoint, parse_checkpoint, parse_note
from trust.errors import (
    ConfigError,
    FormatError,
    LedgerError,
    NotFoundError,
    ProofError,
    StorageUnavailableError,
    TransportError,
    TrustError,
    WardenError,
)
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.record import EventType
from trust.root import TrustRoot

if TYPE_CHECKING:
    from agent.outbox import Outbox
    from protos.types import ConsistencyProof, InclusionProof

__all__ = [
    "SCHEMA",
    "HubLog",
    "Misbehaviour",
    "MisbehaviourKind",
    "Witness",
    "WitnessReport",
]

SCHEMA = "warden.witness/v1"
"""The ``schema`` of ``witness.json``."""

_log = logging.getLogger("warden.agent.witness")
_FIELDS = frozenset({"schema", "origin", "last_checkpoint", "halted", "halt_reason", "findings"})
_FINDING_FIELDS = frozenset({"fingerprint", "size", "root_hash", "evidence", "recorded"})
# Recorded findings kept for de-duplication; unrecorded ones are all kept until written.
_KEEP_RECORDED = 64
# Outbox records fetched per query while proving.
_PROVE_BATCH = 100
_HALT_HINT = ("records are kept and pruning is stopped; investigate the hub_misbehaviour "
              "record ('warden agent status' shows the halt)")


class MisbehaviourKind(StrEnum):
    """What the hub was caught doing."""

    ROLLBACK = "rollback"
    """A checkpoint of a smaller tree than one the hub showed before."""
    FORK = "fork"
    """Two checkpoints of the same size with different roots."""
    INCONSISTENT = "inconsistent"
    """A larger tree that does not extend the last one (no valid consistency proof)."""
    RECORD_NOT_INCLUDED = "record_not_included"
    """A record of this node is not at the acknowledged index under a signed tree head
    (dropped, moved or rewritten)."""
    PROOF_REFUSED = "proof_refused"
    """The hub said an index or size its own signed checkpoint covers does not exist."""
    ACK_CONFLICT = "ack_conflict"
    """Acknowledgements that contradict earlier ones or go backwards (reordering)."""


class Misbehaviour(TrustError):
    """A finding: the hub showed this node something an honest append-only log cannot.

    ``kind`` says what, ``detail`` how (sizes, indices, hashes); ``notes`` are the signed
    checkpoint notes involved (text); ``shown`` is the tree head the hub showed when caught
    (the record's subject); ``facts`` are further small values for the evidence.
    """

    def __init__(
        self,
        kind: MisbehaviourKind,
        detail: str,
        *,
        notes: tuple[str, ...] = (),
        shown: Checkpoint | None = None,
        facts: Mapping[str, int | str] | None = None,
    ) -> None:
        super().__init__(f"hub misbehaviour ({kind.value}): {detail}", hint=_HALT_HINT)
        self.kind = kind
        self.detail = detail
        self.notes = notes
        self.shown = shown
        self.facts: dict[str, int | str] = dict(facts or {})

    def evidence(self, origin: str | None) -> dict[str, Any]:
        """The ``hub_misbehaviour`` record's evidence (small, public values only)."""
        return {**self.facts, "kind": self.kind.value, "detail": self.detail,
                "origin": origin, "checkpoints": list(self.notes)}

    @property
    def fingerprint(self) -> str:
        """Identifies the lie, so the same one seen again is not recorded twice."""
        facts = sorted((k, str(v)) for k, v in self.facts.items())
        head = None if self.shown is None else (self.shown.size, self.shown.root_hash.hex())
        blob = json.dumps([self.kind.value, list(self.notes), facts, head])
        return hashlib.sha256(blob.encode()).hexdigest()


class HubLog(Protocol):
    """What the witness asks the hub (:class:`protos.client.HubClient` has it)."""

    def get_checkpoint(self, tree_size: int | None = None) -> bytes: ...

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof: ...

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        ...


@dataclass(frozen=True)
class WitnessReport:
    """One round of :meth:`Witness.observe`.

    ``reachable`` is false when the hub could not be reached; ``checkpoint`` is the checkpoint
    kept this round (None if none was); ``proved`` counts records newly marked proved;
    ``misbehaviour`` is the finding of this round; ``error`` says why nothing was verified or
    proved when the hub refused or sent an unverifiable checkpoint (not a finding).
    """

    reachable: bool
    checkpoint: VerifiedCheckpoint | None = None
    proved: int = 0
    misbehaviour: Misbehaviour | None = None
    error: str | None = None


@dataclass
class _Finding:
    fingerprint: str
    size: int
    root_hash: bytes
    evidence: dict[str, Any]
    recorded: bool


class _HubRefused(WardenError):
    """The hub answered a witness call with an error (not a transport failure)."""


class Witness:
    """The witness state of one node. Build with :meth:`load`; methods persist changes."""

    def __init__(self, path: Path, *, origin: str | None) -> None:
        self.path = path
        self.origin = origin
        self.last: Checkpoint | None = None
        self.last_note: str | None = None
        self.halted = False
        self.halt_reason: str | None = None
        self._findings: list[_Finding] = []

    # -- state file ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, *, origin: str | None) -> Witness:
        """The witness state at ``path`` (a fresh one when the file does not exist).

        ``origin`` is the configured ``hub_origin`` (None: learn it at enrollment). Raises
        :class:`ConfigError` when it differs from the pinned one, :class:`FormatError` for a
        damaged file and :class:`StorageUnavailableError` for one that cannot be read.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path, origin=origin)
        except OSError as exc:
            raise StorageUnavailableError(f"witness state {path}: cannot read ({exc.strerror})",
                                          hint="check the agent's state directory") from exc
        w = cls(path, origin=None)
        w._parse(data)
        if origin is not None and w.origin is not None and origin != w.origin:
            raise ConfigError(
                f"hub_origin {origin!r} differs from the origin {w.origin!r} pinned in {path}",
                hint="a hub log's origin never changes: fix hub_origin, or enroll this node "
                     "afresh in a new state directory")
        if w.origin is None:
            w.origin = origin
        return w

    def _parse(self, data: bytes) -> None:
        from trust.canonical import loads_object

        where = f"witness state {self.path}"
        hint = ("the file is damaged; restore it from a backup (deleting it makes the agent "
                "trust the hub's next checkpoint afresh)")
        try:
            doc = loads_object(data, what=where)
            if set(doc) != _FIELDS or doc["schema"] != SCHEMA:
                raise FormatError(f"{where}: expected schema {SCHEMA} with fields "
                                  f"{', '.join(sorted(_FIELDS))}")
            origin, note = doc["origin"], doc["last_checkpoint"]
            halted, reason = doc["halted"], doc["halt_reason"]
            if not (origin is None or (isinstance(origin, str) and origin)):
                raise FormatError(f"{where}: origin must be a non-empty string or null")
            if not isinstance(halted, bool) or not (reason is None or isinstance(reason, str)):
                raise FormatError(f"{where}: halted must be a boolean, halt_reason a string")
            self.origin, self.halted, self.halt_reason = origin, halted, reason
            if note is not None:
                if not isinstance(note, str) or origin is None:
                    raise FormatError(f"{where}: last_checkpoint must be a note with an origin")
                cp = parse_checkpoint(parse_note(note).text)
                if cp.origin != origin:
                    raise FormatError(f"{where}: last_checkpoint is of {cp.origin!r}, not the "
                                      f"pinned origin {origin!r}")
                self.last, self.last_note = cp, note
            if not isinstance(doc["findings"], list):
                raise FormatError(f"{where}: findings must be a list")
            self._findings = [_parse_finding(f, where) for f in doc["findings"]]
        except FormatError as exc:
            raise FormatError(exc.message if exc.message.startswith(where)
                              else f"{where}: {exc.message}", hint=hint) from exc

    def _save(self) -> None:
        from trust._internal.files import replace_file

        recorded = [f for f in self._findings if f.recorded][-_KEEP_RECORDED:]
        self._findings = [f for f in self._findings if f in recorded or not f.recorded]
        doc = {
            "schema": SCHEMA,
            "origin": self.origin,
            "last_checkpoint": self.last_note,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
            "findings": [{"fingerprint": f.fingerprint, "size": f.size,
                          "root_hash": f.root_hash.hex(), "evidence": f.evidence,
                          "recorded": f.recorded} for f in self._findings],
        }
        try:
            replace_file(self.path, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")
        except OSError as exc:
            raise StorageUnavailableError(
                f"witness state {self.path} cannot be written: {exc.strerror or exc}",
                hint="check the agent's state directory: permissions, disk, mount") from exc

    # -- checkpoints -----------------------------------------------------------------------

    def pin_origin(self, note: bytes, root: TrustRoot) -> None:
        """Pin the log origin from the checkpoint ``note`` the hub returned at enrollment.

        The origin line is read unverified, then the whole note is verified under ``root``'s
        hub role *for that origin* (the signature key name is the origin), so a note that
        names another log or is not signed by the hub is refused (the verifier's
        :class:`~trust.errors.TrustError`). A configured or already pinned origin that differs
        is a :class:`ConfigError`. The checkpoint is kept as the first one witnessed.
        """
        claimed = parse_checkpoint(parse_note(note).text).origin
        if self.origin is not None and claimed != self.origin:
            raise ConfigError(
                f"the hub's checkpoint is of log {claimed!r}, but this node expects "
                f"{self.origin!r} ({self.path})",
                hint="check hub_origin in agent.yaml and which hub this node talks to")
        cp = verify_hub_checkpoint(root, note, origin=claimed)
        last = self.last
        if last is not None and last.size == cp.size and last.root_hash != cp.root_hash:
            raise Misbehaviour(MisbehaviourKind.FORK, _fork_detail(last, cp),
                               notes=(self.last_note or "", _text(note)), shown=cp)
        self.origin = claimed
        if last is None:
            # With a checkpoint kept already (re-enrollment), the next round proves the hub's
            # newer tree consistent with it; here there is no client to ask.
            self.last, self.last_note = cp, _text(note)
        self._save()

    def observe_checkpoint(
        self, note: bytes, root: TrustRoot, client: HubLog
    ) -> VerifiedCheckpoint:
        """Verify ``note`` and check it extends the last kept checkpoint; keep and return it.

        Raises :class:`Misbehaviour` (rollback, fork, inconsistent, proof_refused), the
        verifier's :class:`~trust.errors.TrustError`/:class:`FormatError` for a note that does
        not verify (not a finding), :class:`ConfigError` when no origin is pinned, and
        :class:`TransportError` when the hub cannot be reached for the consistency proof.
        """
        origin = self._require_origin()
        new = verify_hub_checkpoint(root, note, origin=origin)
        text = _text(note)
        last = self.last
        if last is not None:
            notes = (self.last_note or "", text)
            if new.size < last.size:
                raise Misbehaviour(
                    MisbehaviourKind.ROLLBACK,
                    f"the hub showed a tree of size {new.size} after one of size {last.size}",
                    notes=notes, shown=new, facts={"old_size": last.size, "new_size": new.size})
            if new.size == last.size:
                if new.root_hash != last.root_hash:
                    raise Misbehaviour(MisbehaviourKind.FORK, _fork_detail(last, new),
                                       notes=notes, shown=new, facts={"size": new.size})
                return new
            if last.size > 0:  # every tree extends the empty one
                self._check_consistency(client, last, new, notes)
        self.last, self.last_note = new, text
        self._save()
        return new

    def _check_consistency(self, client: HubLog, last: Checkpoint, new: Checkpoint,
                           notes: tuple[str, ...]) -> None:
        facts = {"old_size": last.size, "new_size": new.size}
        proof = _ask(lambda: client.consistency_proof(last.size, new.size),
                     f"consistency proof from size {last.size} to {new.size}", notes, new, facts)
        try:
            if (proof.old_size, proof.new_size) != (last.size, new.size):
                raise ProofError(f"the hub answered with a proof from size {proof.old_size} "
                                 f"to {proof.new_size}")
            merkle.verify_consistency(last.size, new.size, list(proof.hashes),
                                      last.root_hash, new.root_hash)
        except ProofError as exc:
            raise Misbehaviour(
                MisbehaviourKind.INCONSISTENT,
                f"the tree of size {new.size} (root {new.root_hash.hex()}) does not extend the "
                f"one of size {last.size} (root {last.root_hash.hex()}): {exc.message}",
                notes=notes, shown=new, facts=facts) from exc

    # -- records ---------------------------------------------------------------------------

    def prove_records(self, client: HubLog, outbox: Outbox, checkpoint: VerifiedCheckpoint) -> int:
        """Prove inclusion of the outbox's acknowledged records under ``checkpoint`` (one this
        witness kept) and mark them proved; return how many were marked.

        Records acknowledged at an index the checkpoint does not cover wait for a later one.
        Raises :class:`Misbehaviour` when a proof fails for this node's exact envelope bytes
        at the acknowledged index. While halted, proofs are still checked but nothing is
        marked (returns 0).
        """
        notes = () if self.last_note is None else (self.last_note,)
        proved = 0
        while True:
            batch = [(e, e.ledger_index) for e in outbox.unproved(limit=_PROVE_BATCH)
                     if e.ledger_index is not None and e.ledger_index < checkpoint.size]
            for entry, index in batch:
                self._check_inclusion(client, checkpoint, entry.seq, index, entry.envelope,
                                      notes)
                if not self.halted:
                    outbox.mark_proved(entry.seq, ledger_index=index)
                    proved += 1
            if self.halted or len(batch) < _PROVE_BATCH:
                return proved

    def _check_inclusion(self, client: HubLog, cp: VerifiedCheckpoint, seq: int, index: int,
                         envelope: bytes, notes: tuple[str, ...]) -> None:
        leaf = merkle.leaf_hash(envelope)
        facts: dict[str, int | str] = {"seq": seq, "ledger_index": index, "tree_size": cp.size,
                                       "envelope_sha256": hashlib.sha256(envelope).hexdigest()}
        proof = _ask(lambda: client.inclusion_proof(index, cp.size),
                     f"inclusion proof of index {index} in the tree of size {cp.size}",
                     notes, cp, facts)
        try:
            if (proof.index, proof.tree_size) != (index, cp.size):
                raise ProofError(f"the hub answered with a proof of index {proof.index} in "
                                 f"size {proof.tree_size}")
            merkle.verify_inclusion(leaf, index, cp.size, list(proof.hashes), cp.root_hash)
        except ProofError as exc:
            claim = ("" if proof.leaf_hash == leaf else
                     f"; the hub says that index holds leaf {proof.leaf_hash.hex()}")
            raise Misbehaviour(
                MisbehaviourKind.RECORD_NOT_INCLUDED,
                f"record seq {seq}, acknowledged at index {index}, is not in the signed tree of "
                f"size {cp.size} (its leaf {leaf.hex()}): {exc.message}{claim}",
                notes=notes, shown=cp, facts=facts) from exc

    # -- rounds and findings ---------------------------------------------------------------

    def observe(self, client: HubLog, outbox: Outbox, root: TrustRoot, *, now: datetime,
                log: logging.Logger | None = None) -> WitnessReport:
        """One witness round: write findings still unrecorded, fetch the latest checkpoint,
        observe it, prove what it covers. A finding is reported (:meth:`report_misbehaviour`);
        an unreachable or refusing hub, or an unverifiable checkpoint, only ends the round.
        Outbox storage errors pass through."""
        log = log or _log
        self.flush_findings(outbox, now=now, log=log)
        try:
            note = _ask(client.get_checkpoint, "latest checkpoint", (), None, {},
                        refusal_is_finding=False)
            cp = self.observe_checkpoint(note, root, client)
            proved = self.prove_records(client, outbox, cp)
        except Misbehaviour as finding:
            self.report_misbehaviour(finding, outbox, now=now, log=log)
            return WitnessReport(True, misbehaviour=finding)
        except TransportError as exc:
            log.info("hub unreachable; witness round skipped",
                     extra={"fields": {"error": exc.message}})
            return WitnessReport(False, error=exc.message)
        except StorageUnavailableError:
            raise  # the outbox's (the hub's own storage errors arrive as _HubRefused)
        except WardenError as exc:
            self._log_failed_round(exc, log)
            return WitnessReport(True, error=exc.message)
        return WitnessReport(True, checkpoint=cp, proved=proved)

    def report_misbehaviour(self, finding: WardenError, outbox: Outbox, *, now: datetime,
                            log: logging.Logger | None = None) -> None:
        """Halt and record ``finding``: log it (error), persist the halt, append one
        ``hub_misbehaviour`` record (once per distinct finding).

        Any other :class:`WardenError` (a checkpoint that does not verify, a hub that refused
        a call) is logged and nothing is halted: it proves no lie. A full or unavailable
        outbox does not lose the finding: it stays in the witness state and is written by
        the next :meth:`flush_findings`.
        """
        log = log or _log
        if not isinstance(finding, Misbehaviour):
            self._log_failed_round(finding, log)
            return
        log.error("hub misbehaviour detected; pruning stopped", extra={"fields": {
            "kind": finding.kind.value, "detail": finding.detail, "origin": self.origin}})
        if not self.halted:
            self.halted = True
            self.halt_reason = f"{finding.kind.value}: {finding.detail}"
        if all(f.fingerprint != finding.fingerprint for f in self._findings):
            shown = finding.shown or self.last
            size, root_hash = ((0, merkle.EMPTY_ROOT) if shown is None
                               else (shown.size, shown.root_hash))
            self._findings.append(_Finding(finding.fingerprint, size, root_hash,
                                           finding.evidence(self.origin), recorded=False))
        self._save()  # the halt is durable before anything else is tried
        self.flush_findings(outbox, now=now, log=log)

    def flush_findings(self, outbox: Outbox, *, now: datetime,
                       log: logging.Logger | None = None) -> int:
        """Append a ``hub_misbehaviour`` record for each finding not recorded yet; return how
        many were written. A storage error is logged and leaves the rest for later."""
        from trust.errors import StorageFullError

        log = log or _log
        written = 0
        for f in self._findings:
            if f.recorded:
                continue
            try:
                outbox.append(event=EventType.HUB_MISBEHAVIOUR,
                              subject=hub_subject(self.origin or "unknown", f.size, f.root_hash),
                              evidence=f.evidence, now=now)
            except (StorageFullError, StorageUnavailableError) as exc:
                log.error("cannot record the hub's misbehaviour yet; kept in the witness "
                          "state", extra={"fields": {"error": exc.message}})
                break
            f.recorded = True
            written += 1
            self._save()
        return written

    def ack_conflict(self, exc: LedgerError, outbox: Outbox, *, now: datetime,
                     log: logging.Logger | None = None) -> None:
        """Report acks the outbox refused (:meth:`Outbox.acknowledge_many`'s
        :class:`LedgerError`: an index contradicting an earlier ack, or going backwards) as
        an ``ack_conflict`` finding. A storage error of the outbox is re-raised: it is not
        the hub's doing."""
        if isinstance(exc, StorageUnavailableError):
            raise exc
        detail = exc.message
        prefix = f"outbox {outbox.path}: "
        if detail.startswith(prefix):  # the node's paths are not the ledger's business
            detail = detail[len(prefix):]
        notes = () if self.last_note is None else (self.last_note,)
        self.report_misbehaviour(Misbehaviour(MisbehaviourKind.ACK_CONFLICT, detail,
                                              notes=notes, shown=self.last),
                                 outbox, now=now, log=log)

    def can_prune(self) -> bool:
        """Whether proved records may be deleted: not after the hub was caught lying."""
        return not self.halted

    def clear_halt(self) -> None:
        """Lift the halt (an operator's decision, see the module docstring); persisted.

        Findings stay (they are not recorded again). Stop the daemon first: a running one
        keeps its own state and would write the halt back.
        """
        self.halted = False
        self.halt_reason = None
        self._save()

    # -- helpers ---------------------------------------------------------------------------

    def _require_origin(self) -> str:
        if self.origin is None:
            raise ConfigError(f"no hub log origin is pinned in {self.path}",
                              hint="run 'warden agent enroll', or set hub_origin")
        return self.origin

    def _log_failed_round(self, exc: WardenError, log: logging.Logger) -> None:
        log.error("witness round failed; nothing proved, records kept",
                  extra={"fields": {"error": exc.message, "halted": self.halted}})


def _ask(fn: Any, what: str, notes: tuple[str, ...], shown: Checkpoint | None,
         facts: Mapping[str, int | str], *, refusal_is_finding: bool = True) -> Any:
    """``fn()``; the hub answering "not found" for what its signed checkpoint covers is a
    finding, any other refusal a :class:`_HubRefused`; transport failures pass through."""
    try:
        return fn()
    except TransportError:
        raise
    except NotFoundError as exc:
        if refusal_is_finding:
            raise Misbehaviour(MisbehaviourKind.PROOF_REFUSED,
                               f"{what}: the hub's signed tree covers it, yet it answered: "
                               f"{exc.message}", notes=notes, shown=shown, facts=facts) from exc
        raise _HubRefused(f"{what}: {exc.message}") from exc
    except WardenError as exc:
        raise _HubRefused(f"{what}: {exc.message}") from exc


def _text(note: bytes | str) -> str:
    return note if isinstance(note, str) else note.decode("utf-8")


def _fork_detail(a: Checkpoint, b: Checkpoint) -> str:
    return (f"two signed checkpoints of size {a.size} with different roots "
            f"{a.root_hash.hex()} and {b.root_hash.hex()}")


def _parse_finding(obj: object, where: str) -> _Finding:
    if not isinstance(obj, dict) or set(obj) != _FINDING_FIELDS:
        raise FormatError(f"{where}: a finding must have fields "
                          f"{', '.join(sorted(_FINDING_FIELDS))}")
    fp, size, root_hex, evidence, recorded = (obj[k] for k in (
        "fingerprint", "size", "root_hash", "evidence", "recorded"))
    ok = (isinstance(fp, str) and isinstance(size, int) and not isinstance(size, bool)
          and size >= 0 and isinstance(root_hex, str) and isinstance(evidence, dict)
          and isinstance(recorded, bool))
    try:
        root_hash = bytes.fromhex(root_hex) if ok else b""
    except ValueError:
        root_hash = b""
    if not ok or len(root_hash) != 32:
        raise FormatError(f"{where}: malformed finding {str(obj)[:80]!r}")
    return _Finding(fp, size, root_hash, evidence, recorded)
