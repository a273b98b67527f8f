"""Metrics at the node, in Prometheus's conventions, served on an optional listen address.

:class:`AgentMetrics` holds one node's metrics in its own
:class:`prometheus_client.CollectorRegistry` (never the process-global one, so two agents in
one process — tests — never share a series); :meth:`AgentMetrics.serve` exposes it over HTTP
(``prometheus_client.start_http_server``) at ``metrics_listen`` in ``agent.yaml``. What is
exported (one agent = one scrape target: Prometheus adds ``instance`` and ``job``, so no
series carries a node label; ``warden_agent_info`` names the node):

=================================================  ======  ===================================
metric                                             type    labels
=================================================  ======  ===================================
``warden_model_accuracy``                          gauge   model, version, stage
``warden_model_metric``                            gauge   model, version, stage, metric
``warden_model_drift_share``                       gauge   model, version, stage
``warden_model_fairness``                          gauge   model, version, stage, feature, metric
``warden_decisions_total``                         counter model, decision (allow, deny, error)
``warden_violations_total``                        counter model, rule
``warden_monitoring_windows_total``                counter model
``warden_drift_alerts_total``                      counter model
``warden_rollbacks_total``                         counter model
``warden_rollbacks_impossible_total``              counter model
``warden_outbox_depth``                            gauge   (records not yet accepted by the hub)
``warden_outbox_unproved``                         gauge   (accepted, inclusion not yet proved)
``warden_policy_version``                          gauge   policy
``warden_policy_expiry_timestamp_seconds``         gauge   policy
``warden_last_policy_update_timestamp_seconds``    gauge
``warden_last_hub_contact_timestamp_seconds``      gauge
``warden_hub_misbehaviour``                        gauge   (1 while the witness is halted)
``warden_agent_info``                              info    version, node_id
``process_*``, ``python_*``                        the client library's standard collectors
=================================================  ======  ===================================

Invariants:

* **Per model, version and stage, the latest measurement.** A stage holds one version of a
  model (a registry's stage pointer or MLflow alias), so the four ``warden_model_*`` gauges
  hold at most one version per (model, stage): observing another version in a stage replaces
  the previous one's series, and :meth:`AgentMetrics.forget_version` drops a version that left
  its stage (a rollback). A version the policy denied (or could not decide) is in no stage, so
  its evidence is counted (decisions, violations) but exported as no gauge: an alert on a
  stage's accuracy only ever sees a version that runs there.
* **No invented values.** A metric the evidence holds as ``null`` (``roc_auc`` of one class, a
  fairness metric of an unmeasurable feature) has no series rather than NaN or 0; a
  monitoring window without labels or without drift keeps the last measured value.
* **Timestamps, not ages** (Prometheus's instrumentation guide: "export the Unix timestamp at
  which it happened, not the time since"): "seconds since the last policy update / hub
  contact" is ``time() - warden_last_..._timestamp_seconds`` in PromQL, and
  ``deploy/prometheus/warden-agent.rules.yml`` records it as ``warden:seconds_since_*``. A
  timestamp is 0 until the event first happens (so "never" reads as very long ago and the
  staleness alerts fire).
* **Counters start at 0** for every declared model and every decision (Prometheus's advice
  for known label values), so ``increase()`` sees the first event.
* The registry is read by the HTTP thread while the daemon writes: the model gauges are one
  collector that copies its table under a lock at scrape time, so a scrape never sees half of
  an observation.
* Importing this module loads only ``prometheus_client`` and the standard library (it runs in
  the idle daemon).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from agent.checks.metric_names import METRIC_KEYS
from trust.errors import ConfigError

__all__ = [
    "DECISIONS",
    "FAIRNESS_METRICS",
    "FOUR_FIFTHS_RATIO",
    "AgentMetrics",
    "MetricsServer",
    "parse_listen",
]

# What ``observe_validation`` counts as a decision: the policy allowed, denied, or no
# decision could be made (a validation error: fail closed, never promoted).
DECISIONS = ("allow", "deny", "error")

# The per-feature fairness scalars of an evidence document (agent/checks/evidence.schema.json,
# ``fairness_feature``) exported as ``warden_model_fairness{metric=...}``; the standard bundle
# gates the first, second, third and fifth, and the four-fifths rule's ratio.
FAIRNESS_METRICS = METRIC_KEYS
FOUR_FIFTHS_RATIO = "four_fifths_ratio"

# Numeric keys of the performance section that are not a quality metric.
_NOT_A_METRIC = frozenset({"n"})
_MODEL_LABELS = ("model", "version", "stage")
_PORT = re.compile(r"[0-9]{1,5}")


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (null, a bool, a string, NaN, a nested object)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _performance(section: Any) -> dict[str, float]:
    """The scalar quality metrics of an evidence ``performance`` section (any task)."""
    if not isinstance(section, Mapping):
        return {}
    out: dict[str, float] = {}
    for key, value in section.items():
        number = _number(value)
        if number is not None and key not in _NOT_A_METRIC:
            out[str(key)] = number
    return out


def _fairness(section: Any) -> dict[tuple[str, str], float]:
    """``{(feature, metric): value}`` from an evidence ``fairness`` section."""
    if not isinstance(section, Mapping):
        return {}
    out: dict[tuple[str, str], float] = {}
    for feature, entry in section.items():
        if not isinstance(entry, Mapping):
            continue
        for name in FAIRNESS_METRICS:
            number = _number(entry.get(name))
            if number is not None:
                out[(str(feature), name)] = number
        four_fifths = entry.get("four_fifths")
        if isinstance(four_fifths, Mapping):
            number = _number(four_fifths.get("ratio"))
            if number is not None:
                out[(str(feature), FOUR_FIFTHS_RATIO)] = number
    return out


def _drift_share(section: Any) -> float | None:
    """``share_drifted`` of an evidence ``drift`` section."""
    return _number(section.get("share_drifted")) if isinstance(section, Mapping) else None


def _timestamp(at: datetime, what: str) -> float:
    if at.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")
    return at.timestamp()


@dataclass
class _InStage:
    """The latest measurements of the one version of a model in one stage."""

    version: str
    performance: dict[str, float] = field(default_factory=dict)
    drift_share: float | None = None
    fairness: dict[tuple[str, str], float] = field(default_factory=dict)


class _ModelGauges:
    """The ``warden_model_*`` gauges, built from one table at scrape time.

    Keyed by (model, stage): a stage holds one version, so replacing the entry is what
    removes the previous version's series; nothing can be left behind by a missed removal.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[tuple[str, str], _InStage] = {}

    def update(self, model: str, stage: str, version: str, *, replace: bool,
               performance: Mapping[str, float] | None = None,
               drift_share: float | None = None,
               fairness: Mapping[tuple[str, str], float] | None = None) -> None:
        """Record measurements of ``version`` in ``stage``.

        ``replace``: the measurements are a whole new evaluation (a validation): every old
        value goes. Otherwise (a monitoring window) only the measured values change. Another
        version held in the stage is dropped either way.
        """
        with self._lock:
            entry = self._table.get((model, stage))
            if replace or entry is None or entry.version != version:
                entry = _InStage(version)
                self._table[(model, stage)] = entry
            if performance:
                entry.performance = dict(performance)
            if drift_share is not None:
                entry.drift_share = drift_share
            if fairness:
                entry.fairness = dict(fairness)

    def forget(self, model: str, version: str, stage: str) -> bool:
        """Drop ``version``'s series in ``stage``; False when the stage holds another one."""
        with self._lock:
            entry = self._table.get((model, stage))
            if entry is None or entry.version != version:
                return False
            del self._table[(model, stage)]
            return True

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            rows = [(model, stage, entry.version, dict(entry.performance), entry.drift_share,
                     dict(entry.fairness)) for (model, stage), entry in self._table.items()]
        accuracy, generic, drift, fairness = self._families()
        for model, stage, version, performance, drift_share, fair in sorted(rows):
            labels = [model, version, stage]
            if "accuracy" in performance:
                accuracy.add_metric(labels, performance["accuracy"])
            for name, value in sorted(performance.items()):
                generic.add_metric([*labels, name], value)
            if drift_share is not None:
                drift.add_metric(labels, drift_share)
            for (feature, name), value in sorted(fair.items()):
                fairness.add_metric([*labels, feature, name], value)
        return [accuracy, generic, drift, fairness]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "warden_model_accuracy",
                "Latest accuracy of the model version in the stage (validation or monitoring).",
                labels=_MODEL_LABELS),
            GaugeMetricFamily(
                "warden_model_metric",
                "Latest value of each scalar performance metric of the model version in the "
                "stage (accuracy, f1, roc_auc, ... as named in the evidence).",
                labels=[*_MODEL_LABELS, "metric"]),
            GaugeMetricFamily(
                "warden_model_drift_share",
                "Latest share of the model's input columns that drifted from the reference.",
                labels=_MODEL_LABELS),
            GaugeMetricFamily(
                "warden_model_fairness",
                "Latest fairness metric per sensitive feature of the model version in the "
                "stage (disparities as in the evidence; four_fifths_ratio).",
                labels=[*_MODEL_LABELS, "feature", "metric"]),
        )


def _agent_version() -> str:
    try:
        return metadata.version("warden")
    except metadata.PackageNotFoundError:
        return "unknown"


class AgentMetrics:
    """One node's metrics; the daemon calls the ``observe_*`` and ``set_*`` methods.

    Thread-safe: the daemon's loop, the policy watcher and the HTTP thread may all use it.
    Methods never raise on odd evidence (a value that is not a finite number is skipped);
    they raise ``ValueError`` only for a programming error (an unknown decision, a naive
    datetime).
    """

    def __init__(self, node_id: str, *, models: Iterable[str] = (),
                 agent_version: str | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._models = _ModelGauges()
        r.register(self._models)
        self._decisions = Counter(
            "warden_decisions", "Policy decisions on model versions, by outcome "
            "(error: no decision could be made; the version was not promoted).",
            ["model", "decision"], registry=r)
        self._violations = Counter(
            "warden_violations", "Policy violations found in validations, by rule.",
            ["model", "rule"], registry=r)
        self._windows = Counter(
            "warden_monitoring_windows", "Monitoring windows evaluated for production.",
            ["model"], registry=r)
        self._drift_alerts = Counter(
            "warden_drift_alerts", "Monitoring windows in which the policy's drift rule fired.",
            ["model"], registry=r)
        self._rollbacks = Counter(
            "warden_rollbacks", "Rollbacks of the production pointer to an earlier version.",
            ["model"], registry=r)
        self._rollbacks_impossible = Counter(
            "warden_rollbacks_impossible", "Rollbacks required by the policy with no version "
            "left that passes it (the current one was kept).", ["model"], registry=r)
        self._outbox_depth = Gauge(
            "warden_outbox_depth", "Signed records in the outbox not yet accepted by the hub.",
            registry=r)
        self._outbox_unproved = Gauge(
            "warden_outbox_unproved", "Records the hub accepted whose inclusion in its log "
            "the node has not proved yet.", registry=r)
        self._policy_version = Gauge(
            "warden_policy_version", "Version of the policy bundle in force.", ["policy"],
            registry=r)
        self._policy_expiry = Gauge(
            "warden_policy_expiry_timestamp_seconds", "When the policy bundle in force expires "
            "(Unix time); after it the node refuses every promotion.", ["policy"], registry=r)
        self._policy_update = Gauge(
            "warden_last_policy_update_timestamp_seconds", "When a policy bundle last came into "
            "force at the node (Unix time; 0: never).", registry=r)
        self._hub_contact = Gauge(
            "warden_last_hub_contact_timestamp_seconds", "When the hub last answered the node "
            "(Unix time; 0: never).", registry=r)
        self._misbehaviour = Gauge(
            "warden_hub_misbehaviour", "1 while the node holds evidence that the hub's log "
            "misbehaved (the witness is halted), else 0.", registry=r)
        Info("warden_agent", "The Warden agent at this target.", registry=r).info(
            {"version": agent_version or _agent_version(), "node_id": node_id})
        self._lock = threading.Lock()
        self._policy_name: str | None = None
        self.declare_models(models)

    def declare_models(self, models: Iterable[str]) -> None:
        """Start the per-model counters at 0 (call with the configured models, and on reload)."""
        for model in models:
            self._declare(model)

    def _declare(self, model: str) -> None:
        for decision in DECISIONS:
            self._decisions.labels(model, decision)
        for counter in (self._windows, self._drift_alerts, self._rollbacks,
                        self._rollbacks_impossible):
            counter.labels(model)

    def observe_validation(self, model: str, version: str, stage: str,
                           evidence: Mapping[str, Any] | None, decision: str,
                           violations: Sequence[str]) -> None:
        """A validation of ``version`` for ``stage`` ended in ``decision``.

        ``evidence`` is the evidence document (None when the checks could not run);
        ``violations`` the rule of each violation (one count each). When ``decision`` is
        ``allow`` the version is now in ``stage``: its performance, drift and fairness gauges
        replace whatever the stage held; otherwise only the counters move.
        """
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        self._declare(model)
        self._decisions.labels(model, decision).inc()
        for rule in violations:
            self._violations.labels(model, rule).inc()
        if decision != "allow":
            return
        doc: Mapping[str, Any] = evidence or {}
        self._models.update(model, stage, version, replace=True,
                            performance=_performance(doc.get("performance")),
                            drift_share=_drift_share(doc.get("drift")),
                            fairness=_fairness(doc.get("fairness")))

    def observe_window(self, model: str, version: str, stage: str, drift_share: float | None,
                       performance: Mapping[str, Any] | None, drift_alert: bool) -> None:
        """A monitoring window of ``version`` (in ``stage``) was evaluated.

        ``performance`` is a performance section (None until labels arrived); the values
        measured replace the stage's, the others stay. ``drift_alert``: the policy's drift
        rule fired for this window.
        """
        self._declare(model)
        self._windows.labels(model).inc()
        if drift_alert:
            self._drift_alerts.labels(model).inc()
        self._models.update(model, stage, version, replace=False,
                            performance=_performance(performance),
                            drift_share=_number(drift_share))

    def observe_rollback(self, model: str, *, impossible: bool = False) -> None:
        """The production pointer was moved back (``impossible``: no passing version left).

        The caller also calls :meth:`forget_version` for the version that left the stage.
        """
        self._declare(model)
        (self._rollbacks_impossible if impossible else self._rollbacks).labels(model).inc()

    def forget_version(self, model: str, version: str, stage: str) -> None:
        """``version`` left ``stage``: drop its gauges there (no-op if the stage moved on)."""
        self._models.forget(model, version, stage)

    def set_outbox(self, depth: int, unproved: int) -> None:
        """The outbox holds ``depth`` unaccepted and ``unproved`` accepted-unproved records."""
        self._outbox_depth.set(depth)
        self._outbox_unproved.set(unproved)

    def policy_applied(self, name: str, version: int, at: datetime, *,
                       expires: datetime | None = None) -> None:
        """Bundle ``name`` v``version`` came into force at ``at`` (also the last good bundle
        loaded at start). One bundle is in force at a time: another name's series go."""
        stamp = _timestamp(at, "policy_applied(at=...)")
        expiry = _timestamp(expires, "policy_applied(expires=...)") if expires else None
        with self._lock:
            if self._policy_name != name:
                self._policy_version.clear()
                self._policy_expiry.clear()
                self._policy_name = name
            self._policy_version.labels(name).set(version)
            if expiry is not None:
                self._policy_expiry.labels(name).set(expiry)
            else:
                self._policy_expiry.clear()
            self._policy_update.set(stamp)

    def hub_contact(self, at: datetime) -> None:
        """The hub answered at ``at``."""
        self._hub_contact.set(_timestamp(at, "hub_contact(at=...)"))

    def set_misbehaviour(self, halted: bool) -> None:
        """Whether the node holds evidence of hub misbehaviour (the witness is halted)."""
        self._misbehaviour.set(1 if halted else 0)

    def serve(self, listen: str, *, where: str = "metrics_listen") -> MetricsServer:
        """Serve ``/metrics`` (any path) over HTTP at ``listen`` (``HOST:PORT``; port 0: any).

        Raises :class:`~trust.errors.ConfigError` naming ``where`` and the address when it
        cannot be used (malformed, unknown host, port taken, address not on this host).
        """
        host, port = _split_listen(listen, where=where)
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConfigError(
                f"{where}: cannot listen on {listen!r}: {reason}",
                hint="choose a free port on an address of this host, or remove metrics_listen",
            ) from None
        return MetricsServer(server, thread)


class MetricsServer:
    """The metrics HTTP server (a daemon thread); :meth:`close` stops it and frees the port."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._closed = False
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    @property
    def address(self) -> str:
        """``HOST:PORT`` actually bound (IPv6 hosts in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _split_listen(value: Any, *, where: str, key: str = "metrics_listen") -> tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        bare = host[1:-1] if bracketed else host
        if (sep and bare and _PORT.fullmatch(port) is not None and int(port) <= 65535
                and not any(c.isspace() or c in "/[]" for c in bare)
                and (":" not in bare or bracketed)):
            return bare, int(port)
    raise ConfigError(
        f"{where}: {key} {value!r} must be HOST:PORT with a port in 0..65535 (0: any free port)",
        hint="e.g. 127.0.0.1:9464, 0.0.0.0:9464 (every interface) or [::1]:9464",
    )


def parse_listen(value: Any, *, where: str, key: str) -> str:
    """``value`` if it is a usable ``HOST:PORT`` for the metrics server, else ConfigError.

    Key ``metrics_listen`` (string, optional, default: none — no metrics server): the address
    the agent serves Prometheus metrics on, ``HOST:PORT`` with IPv6 hosts in brackets and a
    port in 0..65535 (0: any free port, for tests). The endpoint has no authentication and
    serves aggregates only; listen on a loopback or management address. The message names
    ``where`` (the file) and ``key``.
    """
    _split_listen(value, where=where, key=key)
    return str(value)

