"""Governing what runs in production: monitoring windows → records → rollback → hooks.

:class:`ProductionWatch` is the daemon's production half (the :class:`~agent.validation.
Governor` is the promotion half). For every configured model with a ``monitoring`` section
and a version in the ``production`` stage, each pass (:meth:`ProductionWatch.step`):

1. polls the model's :class:`~agent.monitoring.Monitor` and records every result it gives,
   then commits it (records first: a result not committed comes back after a restart and
   is recorded again — a possible duplicate, never a lost window):

   * an ``input`` result (a refused batch or labels file) and a ``performance`` window are
     ``monitoring`` records;
   * a ``drift`` window is judged by the policy in force: its drift evidence goes into a
     policy input about the production version (``model.stage = production``) and the
     window is a ``drift_alert`` when the decision carries a violation of a drift rule
     (rule ``drift.*`` — the standard library's ``lib.drift``), else ``monitoring``. The
     input is kept at ``state_dir/inputs/<sha256>.json`` like every decision's. With a drift
     alert and the model's ``reference`` a data file, evidently's HTML drift report of the
     same rows is written beside the version's model card
     (``state_dir/cards/<model>/<version>/drift-<start>-<end>.html``); its digest goes in the
     record. A window above :data:`REPORT_MAX_ROWS` rows gets no report (evidently needs
     about a minute per million rows on the daemon's main loop), and says so.

2. asks the policy whether production must roll back: a policy input with the production
   status (:meth:`~agent.monitoring.Monitor.production_status`: accuracy, hours below the
   bundle's ``rollback_min_accuracy``, deployment age, and ``drift_alert`` — whether the
   latest drift window judged while this version was in production alerted) is evaluated,
   and a violation of rule ``rollback.required`` (the standard library's ``lib.rollback``)
   means rollback. Then :func:`agent.rollback.choose_rollback_target` picks the last version
   that passed under the policy now in force, never a blocked one nor one this stage was
   rolled back from; the ``rollback`` record (subject: the version rolled back *to*;
   evidence: from, to, reasons, the trigger's evidence digest and policy input) is appended,
   and only then the stage pointer moves. With no version left, ``rollback_impossible`` is
   recorded once per version and set of reasons, and the current version is kept.

3. hands what happened to the daemon's hooks (:class:`Notice`): every ``drift_alert``,
   ``rollback`` and ``rollback_impossible`` to the alert hooks; the retraining hook once per
   pass and model — for the rollback when there was one, else for the drift alert.

State (``state_dir/production.json``, replaced atomically; one writer, the daemon): per
model, the version last seen in production and since when, the active drift alert (which
version, which window), the versions rolled back from, the rollback already reported
impossible, and a pointer move recorded but not yet made (made on the next pass, so a crash
between the ``rollback`` record and the move cannot leave the record without the action).
An unreadable or damaged state file is :class:`StorageUnavailableError`, never "nothing
happened" (that could roll back to a version already rolled back from).

Nothing runs without a policy in force: with none (not received, rejected, expired) windows
wait, unrecorded, and no pointer moves (fail closed).

Light: importing this module imports no NumPy, pyarrow or regopy.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import PRODUCTION_STAGE, AgentConfig, ModelConfig
from agent.monitoring import Monitor, WindowResult
from agent.outbox import Outbox
from agent.policy_input import ModelInfo, ProductionStatus, build_policy_input
from agent.registry import Registry
from agent.state_files import keep_json, load_document, save_document
from trust.canonical import Sha256
from trust.errors import (
    StorageFullError,
    StorageUnavailableError,
    WardenError,
)
from trust.record import AuditRecord, Decision, EventType, PolicyRef, Subject
from trust.timeutil import format_time, parse_time

if TYPE_CHECKING:
    from agent.metrics import AgentMetrics
    from trust.policy.bundle import PolicyBundle
    from trust.policy.decision import Decision as EngineDecision
    from trust.policy.engine import PolicyEngine

__all__ = [
    "DRIFT_RULE_PREFIX",
    "PRODUCTION_FILE",
    "REPORT_MAX_ROWS",
    "ROLLBACK_RULE",
    "Notice",
    "ProductionWatch",
]

PRODUCTION_FILE = "production.json"
PRODUCTION_SCHEMA = "warden.agent-production/v1"
EVIDENCE_DIR = "evidence"
DRIFT_RULE_PREFIX = "drift."
ROLLBACK_RULE = "rollback.required"
#: Windows above this many rows get no evidently HTML report (see the module docstring).
REPORT_MAX_ROWS = 200_000


@dataclass(frozen=True)
class Notice:
    """Something recorded that hooks should hear of: the event, the record, the evidence
    file (``state_dir/evidence/<sha256>.json``, the record's evidence), and whether the
    model's retraining hook should run for it."""

    event: str
    model: ModelConfig
    version: str
    reason: str
    record: AuditRecord
    evidence_path: Path
    details: Mapping[str, Any] = field(default_factory=dict)
    retrain: bool = False


class _State:
    """``production.json``: ``{model: entry}`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.models: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, path: Path) -> _State:
        st = cls(path)
        st.models = load_document(
            path, schema=PRODUCTION_SCHEMA, key="models", what="the production state",
            refusal="refusing to govern production without it",
            hint=f"restore {path} (removing it forgets which versions were rolled back from)")
        return st

    def save(self) -> None:
        save_document(self.path, schema=PRODUCTION_SCHEMA, key="models", entries=self.models,
                      what="the production state")

    def entry(self, model: str) -> dict[str, Any]:
        return self.models.setdefault(model, {"version": None, "since": None, "alert": None,
                                              "rolled_back_from": [], "impossible": None,
                                              "move": None, "check": False})


def _drift_rules(decision: EngineDecision) -> list[dict[str, str]]:
    return [v.to_dict() for v in decision.violations if v.rule.startswith(DRIFT_RULE_PREFIX)]


def _of_model(decided: Callable[[], Mapping[str, Mapping[str, Mapping[str, Any]]]],
              name: str) -> Mapping[str, Mapping[str, Any]]:
    return decided().get(name, {})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class ProductionWatch:
    """Production monitoring, rollback and their records for one node (see the module doc)."""

    def __init__(self, config: AgentConfig, registry: Registry, outbox: Outbox, *,
                 log: logging.Logger, metrics: AgentMetrics | None = None) -> None:
        self.config = config
        self.registry = registry
        self.outbox = outbox
        self.log = log
        self.metrics = metrics
        self.state_path = config.state_dir / PRODUCTION_FILE
        self.inputs_dir = config.state_dir / "inputs"
        self.evidence_dir = config.state_dir / EVIDENCE_DIR
        self.monitors: dict[str, Monitor] = {
            m.name: Monitor(m, m.monitoring, config.state_dir)
            for m in config.models if m.monitoring is not None
        }
        # (model, version) -> artefact SHA-256, read once per process (reading hashes it).
        self._artefacts: dict[tuple[str, str], Sha256] = {}
        self._failing: dict[str, str] = {}

    def step(self, *, bundle: PolicyBundle, engine: PolicyEngine, now: datetime,
             decided: Callable[[], Mapping[str, Mapping[str, Mapping[str, Any]]]]
             ) -> list[Notice]:
        """One pass over every monitored model; the notices for the hooks.

        ``decided`` reads the governor's decided state (``Governor.decided``); it is called only
        when a pointer moved or a rollback is considered, not on every idle pass. Raises storage
        errors (retried next pass; what was recorded stays recorded); a model whose
        registry or monitor fails otherwise is logged and the others go on.
        """
        if not self.monitors:
            return []
        st = _State.load(self.state_path)
        notices: list[Notice] = []
        for name, monitor in self.monitors.items():
            try:
                notices.extend(self._model(monitor, st, bundle=bundle, engine=engine, now=now,
                                           decided=functools.partial(_of_model, decided, name)))
            except (StorageFullError, StorageUnavailableError):
                raise
            except WardenError as exc:
                # Logged once while it repeats (a pass runs every few seconds).
                key = f"{type(exc).__name__}: {exc.message}"
                if self._failing.get(name) != key:
                    self._failing[name] = key
                    self.log.error("production monitoring failed for a model; retrying "
                                   "next pass", extra={"fields": {
                                       "model": name, "error": exc.diagnostics()}})
                continue
            if self._failing.pop(name, None) is not None:
                self.log.info("production monitoring works again",
                              extra={"fields": {"model": name}})
        return notices

    # -- one model ---------------------------------------------------------------------------

    def _model(self, monitor: Monitor, st: _State, *, bundle: PolicyBundle,
               engine: PolicyEngine, now: datetime,
               decided: Callable[[], Mapping[str, Mapping[str, Any]]]) -> list[Notice]:
        model = monitor.model
        entry = st.entry(model.name)
        if entry.get("move"):
            self._finish_move(model, entry, st)
        current = self.registry.current(model.name, PRODUCTION_STAGE)
        if current is None:
            return []  # nothing in production: batches wait in the inputs directory
        if entry.get("version") != current:
            promoted = decided().get(current, {})
            since = promoted.get("time") if promoted.get("stage") == PRODUCTION_STAGE else None
            entry.update(version=current, since=since or format_time(now), alert=None,
                         impossible=None, check=True)
            st.save()
        policy = PolicyRef(bundle.name, bundle.version, bundle.digest)
        notices: list[Notice] = []
        for result in monitor.poll(now):
            notice = self._record_result(monitor, result, current, entry, st, policy=policy,
                                         engine=engine, now=now)
            if notice is None:
                continue
            notices.append(notice)
            # An alert is acted on before the next window of a backlog can clear it.
            rollback = self._check_rollback(monitor, current, entry, st, bundle=bundle,
                                            engine=engine, now=now, decided=decided)
            if rollback is not None:
                notices.append(rollback)
                if rollback.event == "rollback":
                    break  # later windows are recorded next pass, about the new version
        if entry.get("check") and entry.get("version") == current:
            rollback = self._check_rollback(monitor, current, entry, st, bundle=bundle,
                                            engine=engine, now=now, decided=decided)
            if rollback is not None:
                notices.append(rollback)
        # The retraining hook runs once: for the rollback if there was one, else the alert.
        retrain = model.retrain
        if retrain is not None:
            for kind in ("rollback", "drift_alert"):
                i = next((i for i, n in enumerate(notices) if n.event == kind), None)
                if i is not None and retrain.fires_for(kind):
                    notices[i] = replace(notices[i], retrain=True)
                    break
        return notices

    def _finish_move(self, model: ModelConfig, entry: dict[str, Any], st: _State) -> None:
        """Make the pointer move a ``rollback`` record already holds (crash in between)."""
        target = entry["move"]
        if self.registry.current(model.name, PRODUCTION_STAGE) != target:
            self.registry.set_stage(model.name, PRODUCTION_STAGE, target)
        entry["move"] = None
        st.save()

    def _subject(self, model: str, version: str) -> Subject:
        key = (model, version)
        if key not in self._artefacts:
            self._artefacts[key] = self.registry.read(model, version).artefact_sha256
        return Subject(model, version, self._artefacts[key])

    def _info(self, model: ModelConfig, version: str) -> ModelInfo:
        subject = self._subject(model.name, version)
        return ModelInfo(name=model.name, version=version, stage=PRODUCTION_STAGE,
                         n_features=None, artifact_sha256=subject.artifact_sha256)

    def _save_input(self, policy_input: Mapping[str, Any]) -> Sha256:
        return keep_json(self.inputs_dir, policy_input, what="the policy input")[1]

    def _record_result(self, monitor: Monitor, result: WindowResult, version: str,
                       entry: dict[str, Any], st: _State, *, policy: PolicyRef,
                       engine: PolicyEngine, now: datetime) -> Notice | None:
        model = monitor.model
        window = result.to_evidence()
        evidence: dict[str, Any] = {"monitoring": window,
                                    "evidence_sha256": result.evidence_sha256}
        event = EventType.MONITORING
        decision = None
        alert_rules: list[dict[str, str]] = []
        if result.kind == "drift" and result.status == "evaluated":
            # Sections a window does not measure (fairness, lineage, ...) are left out, not
            # null: the policy's rules iterate the sections that are there.
            window_evidence = {k: v for k, v in result.as_check_evidence().items()
                               if v is not None}
            policy_input = build_policy_input(
                window_evidence, self._info(model, version), now=now,
                evidence_source=f"monitoring window {window['window']}",
                allow_unnamed_evidence=True)
            judged = engine.evaluate(policy_input, now=now)
            input_sha = self._save_input(policy_input)
            alert_rules = _drift_rules(judged)
            evidence["policy_input"] = {"sha256": input_sha,
                                        "projected_sha256": judged.projected_sha256}
            decision = Decision(not alert_rules, tuple(alert_rules))
            if alert_rules:
                event = EventType.DRIFT_ALERT
                evidence["drift_report"] = self._drift_report(monitor, result, version)
        record = self.outbox.append(event=event, subject=self._subject(model.name, version),
                                    now=now, policy=policy, decision=decision,
                                    evidence=evidence)
        if result.kind == "drift" and result.status == "evaluated":
            entry["alert"] = None if not alert_rules else {
                "version": version, "seq": record.seq,
                "window": window["window"], "rules": [r["rule"] for r in alert_rules]}
        if result.kind in ("drift", "performance"):
            entry["check"] = True
        st.save()
        monitor.commit(result)
        fields = {"model": model.name, "version": version, "kind": result.kind,
                  "status": result.status, "window": window["window"], "seq": record.seq}
        if self.metrics is not None and result.kind != "input":
            self.metrics.observe_window(
                model.name, version, PRODUCTION_STAGE,
                drift_share=_number((result.drift or {}).get("share_drifted")),
                performance=result.performance, drift_alert=bool(alert_rules))
        if result.kind == "input":
            self.log.warning("monitoring input refused", extra={"fields": {
                **fields, "source": result.source, "error": result.error}})
            return None
        if not alert_rules:
            self.log.info("monitoring window recorded", extra={"fields": fields})
            return None
        self.log.warning("drift alert in production", extra={"fields": {
            **fields, "rules": [r["rule"] for r in alert_rules]}})
        path, _ = keep_json(self.evidence_dir, evidence, what="the evidence")
        reason = "; ".join(r["message"] for r in alert_rules)
        return Notice("drift_alert", model, version, reason, record, path,
                      details={"window": window["window"], "rows": result.rows,
                               "share_drifted": (result.drift or {}).get("share_drifted"),
                               "rules": [r["rule"] for r in alert_rules],
                               "seq": record.seq})

    def _drift_report(self, monitor: Monitor, result: WindowResult,
                      version: str) -> dict[str, Any]:
        """Evidently's HTML report of the window's rows, or why there is none."""
        import importlib.util

        model = monitor.model
        if model.reference is None:
            return {"skipped": "the model has no reference data file (model.reference)"}
        if result.rows > REPORT_MAX_ROWS:
            return {"skipped": f"the window has {result.rows} rows, more than "
                               f"{REPORT_MAX_ROWS} (evidently needs about a minute per "
                               "million rows)"}
        if importlib.util.find_spec("evidently") is None:
            return {"skipped": "evidently is not installed (pip install 'warden[reports]')"}
        from agent.model_card import card_dir
        from agent.reports import drift_report_html, report_settings

        start = format_time(result.window_start).replace(":", "")
        end = format_time(result.window_end).replace(":", "")
        out = card_dir(self.config.state_dir, model.name, version) / f"drift-{start}-{end}.html"
        try:
            settings = report_settings(dict(result.drift or {}))
            current = monitor.window_table(result, settings["columns"])
            report = drift_report_html(reference=model.reference, current=current, out=out,
                                       **settings)
        except (StorageFullError, StorageUnavailableError):
            raise
        except WardenError as exc:
            self.log.warning("no HTML drift report for the window", extra={"fields": {
                "model": model.name, "error": exc.message}})
            return {"error": exc.message}
        except Exception as exc:  # a defect in evidently or pandas: the alert is recorded
            self.log.exception("the HTML drift report failed", extra={"fields": {
                "model": model.name}})
            return {"error": f"{type(exc).__name__}: {exc}"}
        return report.to_dict()

    # -- rollback ----------------------------------------------------------------------------

    def _status(self, monitor: Monitor, entry: Mapping[str, Any], bundle: PolicyBundle,
                version: str, now: datetime) -> ProductionStatus:
        since = parse_time(entry["since"], what=f"{self.state_path}: since") \
            if entry.get("since") else None
        base = monitor.production_status(
            min_accuracy=_number(bundle.data.get("rollback_min_accuracy")), now=now,
            since=since)
        alert = entry.get("alert")
        active = isinstance(alert, Mapping) and alert.get("version") == version
        return ProductionStatus(accuracy=base.accuracy,
                                hours_below_threshold=base.hours_below_threshold,
                                drift_alert=active,
                                deployment_age_hours=base.deployment_age_hours)

    def _check_rollback(self, monitor: Monitor, current: str, entry: dict[str, Any],
                        st: _State, *, bundle: PolicyBundle, engine: PolicyEngine,
                        now: datetime, decided: Callable[[], Mapping[str, Mapping[str, Any]]]
                        ) -> Notice | None:
        from agent.rollback import choose_rollback_target, save_input

        model = monitor.model
        status = self._status(monitor, entry, bundle, current, now)
        policy_input = build_policy_input({}, self._info(model, current), now=now,
                                          production=status, allow_unnamed_evidence=True)
        judged = engine.evaluate(policy_input, now=now)
        reasons = tuple(v.message for v in judged.violations if v.rule == ROLLBACK_RULE)
        if not reasons:
            entry["check"] = False
            st.save()
            return None
        trigger_sha = self._save_input(policy_input)
        choice = choose_rollback_target(
            registry=self.registry, model=model, stage=PRODUCTION_STAGE, current=current,
            decided=decided(), inputs_dir=self.inputs_dir, engine=engine, bundle=bundle,
            now=now, reasons=reasons, exclude=tuple(entry.get("rolled_back_from") or ()))
        alert = entry.get("alert") or {}
        evidence = {**choice.to_evidence(), "trigger": {
            "policy_input_sha256": trigger_sha, "production": status.to_dict(),
            "drift_alert_seq": alert.get("seq") if alert.get("version") == current else None}}
        policy = PolicyRef(bundle.name, bundle.version, bundle.digest)
        reason = "; ".join(reasons)
        if choice.target is None:
            seen = {"version": current, "reasons": list(reasons)}
            if entry.get("impossible") == seen:
                entry["check"] = False
                st.save()
                return None
            record = self.outbox.append(
                event=EventType.ROLLBACK_IMPOSSIBLE, subject=self._subject(model.name, current),
                now=now, policy=policy, decision=Decision(False, tuple(
                    v.to_dict() for v in judged.violations if v.rule == ROLLBACK_RULE)),
                evidence=evidence)
            entry.update(impossible=seen, check=False)
            st.save()
            if self.metrics is not None:
                self.metrics.observe_rollback(model.name, impossible=True)
            self.log.error("rollback required but no earlier version passes the policy in "
                           "force; keeping the current one", extra={"fields": {
                               "model": model.name, "version": current, "reasons": reasons,
                               "skipped": len(choice.skipped), "seq": record.seq}})
            path, _ = keep_json(self.evidence_dir, evidence, what="the evidence")
            return Notice("rollback_impossible", model, current, reason, record, path,
                          details={"from": current, "reasons": list(reasons),
                                   "seq": record.seq})
        target = choice.target
        save_input(choice, self.inputs_dir)
        assert choice.decision is not None
        record = self.outbox.append(
            event=EventType.ROLLBACK, subject=self._subject(model.name, target), now=now,
            policy=policy, decision=Decision(choice.decision.allow, tuple(
                v.to_dict() for v in choice.decision.violations)), evidence=evidence)
        rolled = [*(entry.get("rolled_back_from") or ()), current]
        entry.update(version=target, since=format_time(now), alert=None, impossible=None,
                     rolled_back_from=sorted(set(rolled)), move=target, check=True)
        st.save()  # before the move: a crash in between makes the move on the next pass
        self._finish_move(model, entry, st)
        if self.metrics is not None:
            self.metrics.observe_rollback(model.name)
            self.metrics.forget_version(model.name, current, PRODUCTION_STAGE)
        self.log.warning("production rolled back", extra={"fields": {
            "model": model.name, "from": current, "to": target, "reasons": reasons,
            "seq": record.seq}})
        path, _ = keep_json(self.evidence_dir, evidence, what="the evidence")
        return Notice("rollback", model, target, reason, record, path,
                      details={"from": current, "to": target, "reasons": list(reasons),
                               "seq": record.seq})

    def describe(self) -> Sequence[str]:
        """The monitored model names (for the start-up log)."""
        return tuple(self.monitors)
