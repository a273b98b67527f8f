"""The daemon's side of hooks: fire alert and retraining hooks, record what they did.

:class:`Notifier` owns the :class:`~agent.hooks.HookRunner` (created on the first hook
fired, so a node without hooks starts no thread). The daemon calls :meth:`Notifier.fire`
*after* it recorded what happened (a blocked promotion, a drift alert, a rollback, a lying
hub), and :meth:`Notifier.drain` on every pass:

* the retraining hook's outcome — exit code or HTTP status, attempts, duration, error — is
  a ``retrain_triggered`` record about the same model version as the record that fired it
  (its ``trigger``: event, seq, reason), whether the hook succeeded, failed, hung or never
  ran (queue full, agent stopping): every fired retraining leaves a record. Then the alert
  hooks hear ``retrain_triggered``;
* an alert hook's outcome is logged (info when it worked, warning when not): alerts are
  notifications about records already in the ledger, not governance actions of their own.

A hook's outcome not yet recorded when the agent is killed is lost (the hook may have run);
the event that fired it is in the ledger either way. :meth:`close` waits a bounded time for
running hooks and records their outcomes before the outbox closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.hooks import Hook, HookEvent, HookOutcome, HookRunner
from agent.outbox import Outbox
from trust.record import AuditRecord, EventType, Subject

__all__ = ["Notifier"]


class Notifier:
    """Alert and retraining hooks of one node, and the records of their outcomes."""

    def __init__(self, config: AgentConfig, outbox: Outbox, *, log: logging.Logger,
                 now: Callable[[], datetime]) -> None:
        self.config = config
        self.outbox = outbox
        self.log = log
        self._now = now
        self._runner: HookRunner | None = None
        # id(event) -> (event, the subject and seq of the record that fired the retraining)
        self._retrains: dict[int, tuple[HookEvent, Subject, int]] = {}
        # Outcomes taken from the runner whose record could not be written yet.
        self._unrecorded: list[tuple[Hook, HookEvent, HookOutcome]] = []

    def _hooks(self) -> HookRunner:
        if self._runner is None:
            self._runner = HookRunner(max_workers=2)
        return self._runner

    def pending(self) -> int:
        """Hooks waiting or running, and outcomes not yet recorded."""
        running = 0 if self._runner is None else self._runner.pending()
        return running + len(self._unrecorded)

    def fire(self, event: str, *, record: AuditRecord | None, reason: str,
             evidence_path: Path | None = None, details: Mapping[str, Any] | None = None,
             retrain: Hook | None = None) -> None:
        """Hand ``event`` (recorded as ``record``; None for node events) to every alert hook
        configured for it, and to ``retrain`` when given."""
        subject = None if record is None else record.subject
        alerts = [h for h in self.config.alerts if h.fires_for(event)]
        if not alerts and retrain is None:
            return

        def make() -> HookEvent:
            return HookEvent(event=event, node_id=self.config.node_id,
                             model=None if subject is None else subject.model,
                             version=None if subject is None else subject.version,
                             reason=reason, evidence_path=evidence_path,
                             details=dict(details or {}), time=self._now())

        runner = self._hooks()
        if alerts:
            shared = make()
            for hook in alerts:
                runner.submit(hook, shared)
        if retrain is not None and record is not None:
            own = make()  # its own object: its outcome is told apart by identity
            self._retrains[id(own)] = (own, record.subject, record.seq)
            runner.submit(retrain, own)

    def drain(self) -> None:
        """Record or log every outcome reported since the last call (see the module doc).

        Raises the outbox's storage errors; outcomes not recorded are kept and retried."""
        if self._runner is not None:
            self._unrecorded.extend(self._runner.completed())
        while self._unrecorded:
            hook, event, outcome = self._unrecorded[0]
            retrain = self._retrains.get(id(event))
            if retrain is not None and retrain[0] is event:
                self._record_retrain(event, outcome, retrain[1], retrain[2])
                del self._retrains[id(event)]
            else:
                self._log_alert(hook, event, outcome)
            self._unrecorded.pop(0)

    def _record_retrain(self, event: HookEvent, outcome: HookOutcome, subject: Subject,
                        trigger_seq: int) -> None:
        evidence = {"hook": outcome.to_dict(),
                    "trigger": {"event": event.event, "seq": trigger_seq,
                                "reason": event.reason}}
        record = self.outbox.append(event=EventType.RETRAIN_TRIGGERED, subject=subject,
                                    now=self._now(), evidence=evidence)
        fields = {"model": subject.model, "version": subject.version, "seq": record.seq,
                  "trigger": event.event, **outcome.to_dict()}
        if outcome.ok:
            self.log.info("retraining hook ran", extra={"fields": fields})
        else:
            self.log.warning("retraining hook failed", extra={"fields": {
                **fields, "output": outcome.output}})
        self.fire("retrain_triggered", record=record,
                  reason=f"retraining after {event.event}: "
                  + ("ok" if outcome.ok else f"failed ({outcome.error})"),
                  details={"trigger": event.event, "ok": outcome.ok, "seq": record.seq})

    def _log_alert(self, hook: Hook, event: HookEvent, outcome: HookOutcome) -> None:
        fields = {"event": event.event, "model": event.model, "version": event.version,
                  **outcome.to_dict()}
        if outcome.ok:
            self.log.info("alert hook ran", extra={"fields": fields})
        else:
            self.log.warning("alert hook failed", extra={"fields": {
                **fields, "output": outcome.output}})

    def close(self, timeout: float) -> None:
        """Let running hooks finish (up to ``timeout`` s), then record what they did."""
        if self._runner is None:
            return
        self._runner.close(timeout)
        self.drain()
