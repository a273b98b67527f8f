"""The agent daemon (``warden agent run``): enforce signed policy, keep every record, witness.

One process per node directory. The main loop runs on the main thread and owns every piece
of state (pinned root, last good bundle, registry, outbox, witness); the only other thread is
the :class:`~agent.watcher.PolicyWatcher`, which hands bundle bytes over a queue. Each pass
of the loop (:meth:`Agent.step`):

1. applies root rotations and bundles the watcher delivered (verified by
   :class:`~agent.policy_state.PolicyState`; records first), and records an expiry;
2. every ``scan_interval_s``: validates each new complete model version under the bundle in
   force, if one is in force — none, or an expired one, means no decision and no promotion
   (fail closed; the version stays pending until a fresh bundle arrives); then production
   (:class:`~agent.production.ProductionWatch`): monitoring windows recorded, rollback when
   the policy requires it; what was recorded is handed to the hooks
   (:class:`~agent.notify.Notifier`), whose outcomes are recorded on later passes;
3. pushes pending outbox records in batches and records the hub's acks;
4. every ``witness_interval_s`` (and after each push): verifies the hub's checkpoint,
   consistency with the last one kept, inclusion of its own acknowledged records; prunes
   what is proved unless the witness caught the hub lying;
5. every ``heartbeat_interval_s``: heartbeat with agent and policy version.

Invariants:

* Records before actions: every action (pin a root, apply a bundle, move a stage pointer)
  happens only after its signed record is committed to the outbox; a hub that is away never
  stops governance, it only delays the push.
* The hub is optional at every step: an unreachable hub is logged (once per outage, at
  warning) and retried; it is never a crash and never a reason to drop a record.
* Storage errors of the outbox (disk full, read-only) end the step with an error log; the
  loop retries on the next pass, and nothing is marked done that was not recorded.
* The clock the agent governs by never goes backwards (:func:`agent.policy_state.
  trusted_now`): rewinding the system clock cannot un-expire a bundle.
* SIGTERM/SIGINT: finish the current step, push what is pending (bounded by
  ``DRAIN_TIMEOUT_S``), close the outbox (releasing its lock), exit 0. SIGHUP: reload
  ``agent.yaml`` (models, intervals, log level); a change of identity, hub or state
  directory needs a restart and is refused with a log line, keeping the running config.
* Metrics (``metrics_listen``): served from start to stop on their own thread; updated as
  records are written, never read back by governance.
* Registry annotations (``warden.decision``, ``warden.record_seq``, ``warden.policy``, and
  ``warden.ledger_index`` once the hub acknowledged the record while this process runs) are
  written after the record and the action; a registry that refuses them (an MLflow server
  that is down) is logged, never a reason to undo or repeat a decision.
* Idle, nothing heavy is imported: NumPy, SciPy, pyarrow and the checks load when a version
  is validated; the policy engine's worker starts when the first decision is taken.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, load_agent_config
from agent.node import AGENT_VERSION, hub_client, load_node_key
from agent.notify import Notifier
from agent.outbox import Outbox
from agent.policy_state import PolicyState, trusted_now
from agent.registry import (
    ANNOTATION_DECISION,
    ANNOTATION_LEDGER_INDEX,
    ANNOTATION_POLICY,
    ANNOTATION_RECORD_SEQ,
    DirectoryRegistry,
    Registry,
)
from agent.watcher import PolicyWatcher
from agent.witness import Witness
from trust._internal.files import replace_file
from trust.errors import (
    LedgerError,
    NotFoundError,
    PolicyError,
    StorageFullError,
    StorageUnavailableError,
    TransportError,
    WardenError,
)
from trust.timeutil import format_time, utcnow

__all__ = ["Agent", "RunResult", "read_status_file"]

_log = logging.getLogger("warden.agent")

STATUS_FILE = "status.json"
# SIGTERM waits at most this long for the hub to take what is pending.
DRAIN_TIMEOUT_S = 10.0
# After failed pushes the next waits twice as long each time, up to this.
_MAX_PUSH_BACKOFF_S = 30.0
# Refreshing status.json more often than this only costs fsyncs.
_STATUS_EVERY_S = 2.0
# SIGTERM lets running hooks finish for at most this long (then kills them, recorded).
HOOKS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RunResult:
    """How ``--once`` ended: everything recorded, pushed and proved, or what was left."""

    ok: bool
    pending: int
    unproved: int
    message: str


class _Due:
    """A periodic deadline on the monotonic clock."""

    def __init__(self, every: float, *, now: float, first: float = 0.0) -> None:
        self.every = every
        self.at = now + first

    def ready(self, now: float) -> bool:
        return now >= self.at

    def done(self, now: float) -> None:
        self.at = now + self.every


class Agent:
    """One node's daemon. :meth:`open` takes the outbox lock; :meth:`close` releases it."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reload: Callable[[], AgentConfig] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self._reload = reload
        self._clock = clock
        self._inbox: queue.Queue[bytes] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._hup = threading.Event()
        self._hub_down = False
        self._last_contact: datetime | None = None
        self._status_written = 0.0
        self._engine: Any = None
        self._engine_digest: str | None = None
        self._approvals_cache: dict[str, tuple[Any, ...]] = {}
        # Bundles taken off the inbox whose record could not be written (retried first).
        self._held_back: list[bytes] = []
        # phase -> the failure last logged for it (a repeat is logged at debug only).
        self._failing: dict[str, str] = {}
        self._waiting_logged = False
        self._push_backoff = config.push_interval_s
        self._policy_seen: tuple[str, int] | None = None
        self._halt_seen = False
        # seq -> (model, version) of decision records whose ledger index is not annotated yet.
        self._annotate_index: dict[int, tuple[str, str]] = {}
        self.metrics: Any = None
        self._metrics_server: Any = None
        self.outbox: Outbox
        self.policy: PolicyState
        self.witness: Witness
        self.watcher: PolicyWatcher | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Load the key, take the outbox lock, load root, bundle, witness and registry."""
        config = self.config
        key = load_node_key(config)
        self.outbox = Outbox.open(config.outbox_path, config.node_id, key,
                                  max_bytes=config.outbox_max_bytes)
        try:
            now = self.now()
            self.policy = PolicyState.load(config, now=now, log=_log)
            self.witness = Witness.load(config.witness_path, origin=config.hub_origin)
            self.registry = self._make_registry()
            self.notifier = Notifier(config, self.outbox, log=_log, now=self.now)
            if config.metrics_listen is not None:
                from agent.metrics import AgentMetrics

                self.metrics = AgentMetrics(config.node_id,
                                            models=[m.name for m in config.models],
                                            agent_version=AGENT_VERSION)
                self._metrics_server = self.metrics.serve(config.metrics_listen,
                                                          where="metrics_listen")
                _log.info("metrics served", extra={"fields": {
                    "address": self._metrics_server.address}})
            self._make_governor()
            self.client = hub_client(config, key)
        except BaseException:
            self._close_metrics()
            self.outbox.close()
            raise
        self._key = key
        t = time.monotonic()
        self._scan = _Due(config.scan_interval_s, now=t)
        self._push = _Due(config.push_interval_s, now=t)
        self._witness_due = _Due(config.witness_interval_s, now=t)
        self._heartbeat = _Due(config.heartbeat_interval_s, now=t)
        self._roots_due = _Due(config.witness_interval_s, now=t)

    def _make_registry(self) -> Registry:
        if self.config.mlflow is not None:
            return self.config.mlflow.registry(state_dir=self.config.state_dir)
        return DirectoryRegistry(self.config.registry)

    def _make_governor(self) -> None:
        from agent.production import ProductionWatch
        from agent.validation import Governor

        self.governor = Governor(self.config, self.registry, self.outbox, log=_log)
        self.production = ProductionWatch(self.config, self.registry, self.outbox, log=_log,
                                          metrics=self.metrics)
        self.notifier.config = self.config
        if self.metrics is not None:
            self.metrics.declare_models(m.name for m in self.config.models)

    def _close_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None

    def close(self) -> None:
        """Stop the watcher, the policy engine and the client; release the outbox lock."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self._close_engine()
        self._close_metrics()
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        outbox = getattr(self, "outbox", None)
        if outbox is not None:
            outbox.close()

    def request_stop(self) -> None:
        """Ask the loop to finish its current step and drain (signal-safe)."""
        self._stopping.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Ask the loop to reload ``agent.yaml`` before its next step (signal-safe)."""
        self._hup.set()
        self._wake.set()

    def now(self) -> datetime:
        """The governing clock: the system clock, never earlier than the last record."""
        return trusted_now(self.outbox, self._clock())

    # -- the loop --------------------------------------------------------------------------

    def start_watcher(self) -> None:
        """Start holding WatchPolicies open (the daemon; ``--once`` polls instead)."""
        self.watcher = PolicyWatcher(
            self.client, self.config.policy_name, self.policy.version, self._inbox, self._wake,
            backoff_initial_s=self.config.watch_backoff_initial_s,
            backoff_max_s=self.config.watch_backoff_max_s,
            on_contact=self._contact,
        )
        self.watcher.start()

    def run_forever(self) -> int:
        """The daemon: steps until asked to stop, then drains. Returns the exit code."""
        _log.info("agent started", extra={"fields": self._identity()})
        self.start_watcher()
        while not self._stopping.is_set():
            if self._hup.is_set():
                self._hup.clear()
                self._apply_reload()
            self.step()
            self._wake.wait(self._sleep_for())
            self._wake.clear()
        _log.info("stopping: draining the outbox")
        self._phase("hooks", lambda: self.notifier.close(HOOKS_TIMEOUT_S))
        self._drain(DRAIN_TIMEOUT_S)
        _log.info("agent stopped", extra={"fields": {"pending": self.outbox.depth()}})
        return 0

    def run_once(self, timeout: float) -> RunResult:
        """Process everything pending, push, wait for acks and inclusion proofs (``--once``)."""
        deadline = time.monotonic() + timeout
        self._poll_policy()
        self.step(force=True)
        while time.monotonic() < deadline and not self._stopping.is_set():
            if not self._inbox.empty():
                self.step(force=True)
            self._phase("hooks", self.notifier.drain)
            pending = self.outbox.depth()
            unproved = len(self.outbox.unproved(limit=1))
            if (pending == 0 and (unproved == 0 or not self.witness.can_prune())
                    and not self.notifier.pending()):
                break
            if self.notifier.pending() and not pending:
                self._wake.wait(min(0.1, max(0.0, deadline - time.monotonic())))
                self._wake.clear()
                continue
            self._push_pending()
            self._observe()
            if self.outbox.depth() or self.outbox.unproved(limit=1):
                self._wake.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                self._wake.clear()
        self._phase("hooks", lambda: self.notifier.close(HOOKS_TIMEOUT_S))
        if self.outbox.depth():
            self._push_pending()
            self._observe()
        self._write_status(force=True)
        pending = self.outbox.depth()
        unproved = len(self.outbox.unproved(limit=10_000))
        if self.witness.halted:
            return RunResult(False, pending, unproved,
                             f"the hub misbehaved ({self.witness.halt_reason}); records are "
                             "kept and pruning is stopped")
        if pending or unproved:
            return RunResult(False, pending, unproved,
                             f"{pending} record(s) not acknowledged and {unproved} not proved "
                             f"included within {timeout:g} s (hub unreachable?); they stay in "
                             "the outbox and are pushed by the next run")
        return RunResult(True, 0, 0, "all records acknowledged and proved included")

    def step(self, *, force: bool = False) -> None:
        """One pass of the main loop (see the module docstring).

        Each phase is guarded on its own (:meth:`_phase`): a failing one is logged and
        retried on a later pass, and the others still run — above all push and prune, which
        are what frees a full outbox.
        """
        t = time.monotonic()
        self._phase("policy", self._apply_policy_updates)
        self._phase("expiry", lambda: self.policy.check_expiry(self.outbox, now=self.now()))
        if force or self._scan.ready(t):
            self._scan.done(t)
            self._phase("governance", self._govern_pending)
            self._phase("production", self._govern_production)
        self._phase("hooks", self.notifier.drain)
        # Pushed on every pass while records wait, unless a failed push set a later time.
        if (self.outbox.depth() and (force or self._push.ready(t))
                and self._phase("push", self._push_pending)):
            self._witness_due.at = 0.0
        if force or self._witness_due.ready(t):
            self._witness_due.done(t)
            self._phase("witness", self._observe)
        if self._heartbeat.ready(t):
            self._heartbeat.done(t)
            self._phase("heartbeat", self._send_heartbeat)
        self._phase("observe", self._after_step)
        self._write_status()

    def _after_step(self) -> None:
        """What the pass changed, told to the metrics and (a lying hub) to the alert hooks."""
        bundle = self.policy.bundle
        seen = None if bundle is None else (bundle.name, bundle.version)
        if seen != self._policy_seen:
            self._policy_seen = seen
            if self.metrics is not None and bundle is not None:
                self.metrics.policy_applied(bundle.name, bundle.version, utcnow(),
                                            expires=bundle.manifest.expires)
        if self.witness.halted and not self._halt_seen:
            self.notifier.fire("hub_misbehaviour", record=None,
                               reason=self.witness.halt_reason or "the hub's log misbehaved")
        self._halt_seen = self.witness.halted
        if self.metrics is not None:
            head = self.outbox.status()
            self.metrics.set_outbox(head.depth, head.unproved)
            self.metrics.set_misbehaviour(self.witness.halted)

    def _phase(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; any failure is logged (once while it repeats) and the loop goes on.

        Never a crash loop: a storage error, a refusal, even a defect (an exception outside
        Warden's types, logged with its traceback) ends only this phase of this pass.
        """
        try:
            result = fn()
        except (StorageFullError, StorageUnavailableError) as exc:
            self._failed(name, "state storage refused a write; retrying next pass", exc)
            return None
        except WardenError as exc:
            self._failed(name, f"{name} failed; retrying next pass", exc)
            return None
        except Exception as exc:  # a defect: logged with its traceback, never a restart loop
            key = f"{type(exc).__name__}: {exc}"
            if self._failing.get(name) != key:
                self._failing[name] = key
                _log.exception(f"{name} failed unexpectedly; retrying next pass",
                               extra={"fields": {"phase": name, "error": key}})
            return None
        if self._failing.pop(name, None) is not None:
            _log.info(f"{name} works again", extra={"fields": {"phase": name}})
        return result

    def _failed(self, phase: str, message: str, exc: WardenError) -> None:
        key = f"{type(exc).__name__}: {exc.message}"
        if self._failing.get(phase) == key:
            _log.debug(message, extra={"fields": {"phase": phase, "error": exc.diagnostics()}})
            return
        self._failing[phase] = key
        _log.error(message, extra={"fields": {"phase": phase, "error": exc.diagnostics()}})

    def _sleep_for(self) -> float:
        t = time.monotonic()
        nxt = min(self._scan.at, self._witness_due.at, self._heartbeat.at)
        if self.outbox.depth():
            nxt = min(nxt, self._push.at)
        return max(0.05, min(nxt - t, 5.0))

    # -- policy ------------------------------------------------------------------------------

    def _contact(self) -> None:
        self._last_contact = utcnow()
        if self.metrics is not None:
            self.metrics.hub_contact(self._last_contact)
        if self._hub_down:
            self._hub_down = False
            _log.info("hub reachable again", extra={"fields": {"hub": self.config.hub}})

    def _unreachable(self, exc: WardenError, what: str) -> None:
        if not self._hub_down:
            _log.warning("hub unreachable; governing offline with the last good bundle",
                         extra={"fields": {"hub": self.config.hub, "during": what,
                                           "error": exc.message}})
        self._hub_down = True

    def _hub_call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None when the hub cannot be reached (logged once per outage) or
        refuses the call (not enrolled, key revoked, clock skew beyond the hub's bound:
        logged at error once while it repeats). Neither stops the loop."""
        try:
            result = fn()
        except TransportError as exc:
            self._unreachable(exc, what)
            return None
        except NotFoundError:
            self._contact()
            return None
        except WardenError as exc:
            self._contact()
            self._failed(f"hub {what}", f"the hub refused {what}", exc)
            return None
        self._contact()
        self._failing.pop(f"hub {what}", None)
        return result

    def _poll_policy(self) -> None:
        record = self._hub_call(
            "get policy", lambda: self.client.get_policy(self.config.policy_name))
        if record is not None:
            self._inbox.put(record.envelope)

    def _sync_roots(self) -> None:
        chain = self._hub_call(
            "root chain", lambda: self.client.root_chain(self.policy.root.version))
        if chain:
            applied = self.policy.offer_roots(chain, self.outbox, now=self.now())
            if applied:
                self._close_engine()

    def _apply_policy_updates(self) -> None:
        t = time.monotonic()
        if self._inbox.empty() and not self._held_back and not self._roots_due.ready(t):
            return
        self._roots_due.done(t)
        self._sync_roots()  # a bundle may be signed by keys of a root we have not seen yet
        while True:
            if self._held_back:
                envelope = self._held_back.pop(0)
            else:
                try:
                    envelope = self._inbox.get_nowait()
                except queue.Empty:
                    return
            try:
                self.policy.offer_bundle(envelope, self.outbox, now=self.now())
            except (StorageFullError, StorageUnavailableError):
                # Nothing was applied (records first): offer it again on a later pass — the
                # open stream will not resend it.
                self._held_back.insert(0, envelope)
                raise

    # -- validation --------------------------------------------------------------------------

    def _engine_for(self, bundle: Any) -> Any:
        from trust.policy.engine import PolicyEngine

        digest = bundle.digest  # of the signed content: the same policy whoever cosigned
        if self._engine is None or self._engine_digest != digest:
            self._close_engine()
            self._engine = PolicyEngine(bundle)
            self._engine_digest = digest
        return self._engine

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
            self._engine_digest = None

    def _approvals(self, subject: str) -> tuple[Any, ...]:
        """Approvals for ``subject`` from the hub, each verified here against the pinned root;
        the last good answer while the hub is away."""
        from trust.approval import Approval

        records = self._hub_call(
            "list approvals", lambda: self.client.list_approvals(subject=subject))
        if records is None:
            return self._approvals_cache.get(subject, ())
        verified = []
        for rec in records:
            try:
                verified.append(Approval.from_envelope(rec.envelope, self.policy.root,
                                                       what=f"approval {rec.approval_id}"))
            except WardenError as exc:
                _log.warning("approval from the hub refused",
                             extra={"fields": {"subject": subject, "error": exc.message}})
        self._approvals_cache[subject] = tuple(verified)
        return tuple(verified)

    def _govern_pending(self) -> None:
        pending = self.governor.pending()
        if not pending:
            return
        now = self.now()
        bundle = self.policy.enforceable(now)
        if bundle is None:
            if not self._waiting_logged:
                self._waiting_logged = True
                _log.warning("model versions wait: no policy in force (none received yet, "
                             "rejected, or expired)", extra={"fields": {"pending": len(pending)}})
            return
        self._waiting_logged = False
        from agent.policy_input import subject_of
        from trust.policy.worker import EvaluationCrashError

        try:
            engine = self._engine_for(bundle)
        except EvaluationCrashError:
            raise  # the worker could not start (resources): retried on the next scan
        except PolicyError as exc:
            # Signed and verified, yet not evaluable: fail closed, recorded.
            self.policy.reject_held(exc, self.outbox, now=now)
            return
        for model, version in pending:
            if self._stopping.is_set():
                return
            approvals = self._approvals(subject_of(model.name, version))
            outcome = self.governor.govern(model, version, bundle=bundle, engine=engine,
                                           approvals=approvals, now=self.now())
            self._after_decision(outcome, bundle)

    def _after_decision(self, outcome: Any, bundle: Any) -> None:
        """Metrics, registry annotations and the ``promotion_blocked`` alert of a decision
        already recorded and acted on."""
        from agent.validation import OutcomeKind

        record = outcome.record
        v = outcome.validation
        if self.metrics is not None:
            decision = {OutcomeKind.PROMOTED: "allow", OutcomeKind.BLOCKED: "deny"}.get(
                outcome.kind, "error")
            rules = [] if record.decision is None else [
                str(x.get("rule", "")) for x in record.decision.violations]
            self.metrics.observe_validation(outcome.model, outcome.version,
                                            outcome.stage or "unknown",
                                            None if v is None else v.evidence, decision, rules)
        self._annotate(outcome.model, outcome.version, {
            ANNOTATION_DECISION: {OutcomeKind.PROMOTED: "promote",
                                  OutcomeKind.BLOCKED: "block"}.get(outcome.kind,
                                                                    "validation_error"),
            ANNOTATION_RECORD_SEQ: str(record.seq),
            ANNOTATION_POLICY: f"{bundle.name} v{bundle.version}",
        })
        self._annotate_index[record.seq] = (outcome.model, outcome.version)
        if outcome.kind is OutcomeKind.BLOCKED:
            reasons = [] if record.decision is None else [
                str(x.get("message", x.get("rule", ""))) for x in record.decision.violations]
            self.notifier.fire("promotion_blocked", record=record,
                               reason="; ".join(reasons) or "blocked by policy",
                               details={"stage": outcome.stage, "seq": record.seq,
                                        "rules": [str(x.get("rule", "")) for x in
                                                  (record.decision.violations
                                                   if record.decision else ())]})

    def _annotate(self, model: str, version: str, tags: dict[str, str]) -> None:
        try:
            self.registry.annotate(model, version, tags)
        except WardenError as exc:
            _log.warning("could not write the decision back to the registry",
                         extra={"fields": {"model": model, "version": version,
                                           "error": exc.message}})

    def _govern_production(self) -> None:
        bundle = self.policy.enforceable(self.now())
        if bundle is None or not self.production.monitors:
            return  # no policy in force: windows wait unrecorded (fail closed)
        engine = self._engine_for(bundle)
        notices = self.production.step(bundle=bundle, engine=engine, now=self.now(),
                                       decided=self.governor.decided)
        for n in notices:
            self.notifier.fire(n.event, record=n.record, reason=n.reason,
                               evidence_path=n.evidence_path, details=n.details,
                               retrain=n.model.retrain if n.retrain else None)

    # -- hub: push, witness, heartbeat ------------------------------------------------------

    def _push_pending(self) -> bool:
        """Push pending records in batches; True when anything was acknowledged."""
        acked = False
        while True:  # also while stopping: the drain pushes through here
            batch = self.outbox.pending(limit=self.config.push_batch)
            if not batch:
                return acked
            try:
                result = self.client.append([e.envelope for e in batch])
            except TransportError as exc:
                self._unreachable(exc, "push")
                self._push_failed()
                return acked
            except WardenError as exc:
                self._contact()
                self._failed("hub push", "the hub refused a batch of records; they stay in "
                             f"the outbox (first seq {batch[0].seq})", exc)
                self._push_failed()
                return acked
            self._contact()
            self._failing.pop("hub push", None)
            self._push_backoff = self.config.push_interval_s
            try:
                if len(result.acks) != len(batch):
                    raise LedgerError(f"the hub answered {len(batch)} records with "
                                      f"{len(result.acks)} acks")
                # acks[i] answers envelopes[i] (protos.types.AppendResult).
                self.outbox.acknowledge_many(
                    (e.seq, a.index) for e, a in zip(batch, result.acks, strict=True))
                for e, a in zip(batch, result.acks, strict=True):
                    named = self._annotate_index.pop(e.seq, None)
                    if named is not None:
                        self._annotate(*named, {ANNOTATION_LEDGER_INDEX: str(a.index)})
            except LedgerError as exc:
                self.witness.ack_conflict(exc, self.outbox, now=self.now())
                self._push_failed()
                return acked
            acked = True
            self._observe_note(result.checkpoint)
            if len(batch) < self.config.push_batch:
                return acked

    def _push_failed(self) -> None:
        """The next push waits longer after each failure (up to ``_MAX_PUSH_BACKOFF_S``)."""
        self._push.at = time.monotonic() + self._push_backoff
        self._push_backoff = min(_MAX_PUSH_BACKOFF_S, self._push_backoff * 2)

    def _observe_note(self, note: bytes) -> None:
        """Witness the checkpoint that came with an append, and prove what it covers."""
        try:
            cp = self.witness.observe_checkpoint(note, self.policy.root, self.client)
            if cp is not None:
                self.witness.prove_records(self.client, self.outbox, cp)
        except TransportError as exc:
            self._unreachable(exc, "witness")
            return
        except WardenError as exc:
            # A Misbehaviour halts and is recorded; anything else (a checkpoint that does
            # not verify, a refused call) is only logged: it proves no lie.
            self.witness.report_misbehaviour(exc, self.outbox, now=self.now(), log=_log)
            return
        self._prune()

    def _observe(self) -> None:
        self.witness.observe(self.client, self.outbox, self.policy.root, now=self.now())
        self._prune()

    def _prune(self) -> None:
        if self.witness.can_prune():
            self.outbox.prune()

    def _send_heartbeat(self) -> None:
        bundle = self.policy.bundle
        head = self.outbox.status()
        self._hub_call("heartbeat", lambda: self.client.heartbeat(
            AGENT_VERSION,
            policy_name=None if bundle is None else bundle.name,
            policy_version=None if bundle is None else bundle.version,
            last_acked_seq=head.acknowledged_seq or None,
        ))

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.outbox.depth() and time.monotonic() < deadline:
            before = self.outbox.depth()
            self._push_pending()
            if self.outbox.depth() >= before:
                break  # the hub is away: the records stay for the next start

    # -- reload and status -------------------------------------------------------------------

    def _apply_reload(self) -> None:
        if self._reload is None:
            return
        try:
            new = self._reload()
        except WardenError as exc:
            _log.error("reload refused; keeping the running configuration",
                       extra={"fields": {"error": exc.diagnostics()}})
            return
        fixed = ("node_id", "hub", "ca", "state_dir", "node_key", "passphrase_file",
                 "registry", "root", "insecure", "policy_name", "hub_origin",
                 "outbox_max_bytes", "registry_kind", "mlflow", "metrics_listen")
        changed = [k for k in fixed if getattr(new, k) != getattr(self.config, k)]
        if changed:
            _log.error("reload refused: these keys need a restart; keeping the running "
                       "configuration", extra={"fields": {"keys": changed}})
            return
        old, self.config = self.config, new
        logging.getLogger("warden").setLevel(new.log_level.upper())
        self._make_governor()
        t = time.monotonic()
        for due, every in ((self._scan, new.scan_interval_s), (self._push, new.push_interval_s),
                           (self._witness_due, new.witness_interval_s),
                           (self._heartbeat, new.heartbeat_interval_s),
                           (self._roots_due, new.witness_interval_s)):
            due.every = every
        self._scan.at = t
        self._push_backoff = new.push_interval_s
        if self.watcher is not None and (
                (old.watch_backoff_initial_s, old.watch_backoff_max_s)
                != (new.watch_backoff_initial_s, new.watch_backoff_max_s)):
            self.watcher.stop()
            self.start_watcher()  # the new backoff range
        _log.info("configuration reloaded", extra={"fields": {"models": len(new.models)}})

    def _identity(self) -> dict[str, Any]:
        bundle = self.policy.bundle
        return {
            "node_id": self.config.node_id, "hub": self.config.hub, "pid": os.getpid(),
            "agent_version": AGENT_VERSION, "root_version": self.policy.root.version,
            "policy": None if bundle is None else f"{bundle.name} v{bundle.version}",
        }

    def _write_status(self, *, force: bool = False) -> None:
        t = time.monotonic()
        if not force and t - self._status_written < _STATUS_EVERY_S:
            return
        self._status_written = t
        doc = {
            **self._identity(),
            "updated": format_time(utcnow()),
            "last_hub_contact": None if self._last_contact is None
            else format_time(self._last_contact),
            "hub_reachable": not self._hub_down,
        }
        try:
            replace_file(self.config.state_dir / STATUS_FILE,
                         json.dumps(doc, indent=2).encode() + b"\n")
        except OSError as exc:
            _log.warning("cannot write status.json", extra={"fields": {"error": str(exc)}})


def read_status_file(state_dir: Path) -> Mapping[str, Any] | None:
    """The daemon's last ``status.json``, or None when there is none (never ran)."""
    try:
        return json.loads((state_dir / STATUS_FILE).read_text("utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def reloader(path: Path | None, overrides: Mapping[str, Any]) -> Callable[[], AgentConfig]:
    """A function rebuilding the config as it was built at start (file < env < flags)."""
    return lambda: load_agent_config(path, overrides=dict(overrides))

