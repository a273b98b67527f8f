"""Metrics at the node (issue 11 item 8): what a real HTTP scrape of the agent's registry shows
after each observation, the listen address, and the shipped Prometheus rules naming only
metrics (and labels) the agent exports."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent.checks.disparity import METRIC_KEYS
from agent.checks.drift import drift_evidence
from agent.checks.evidence import build_evidence, evidence_schema
from agent.checks.fairness import fairness_evidence
from agent.checks.fairness_counts import FairnessCounts
from agent.checks.performance import classification_performance
from agent.metrics import (
    DECISIONS,
    FAIRNESS_METRICS,
    FOUR_FIFTHS_RATIO,
    AgentMetrics,
    MetricsServer,
    parse_listen,
)
from trust import strict_yaml
from trust.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "warden-agent.rules.yml"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
Labels = frozenset[tuple[str, str]]


def _labels(**kv: str) -> Labels:
    return frozenset(kv.items())


# --- a real evidence document -------------------------------------------------------------


def real_evidence(seed: int = 7, *, flip: float = 0.1) -> dict[str, Any]:
    """Evidence from the real pure checks (performance, fairness, drift) on generated data."""
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < flip, 1 - y, y)
    score = np.clip(pred * 0.7 + rng.random(n) * 0.3, 0, 1)
    sex = np.array(rng.choice(["F", "M"], n), dtype=object)
    counts = FairnessCounts.from_arrays(y, pred, {"sex": sex})
    income = rng.normal(50, 10, n)
    return build_evidence(
        performance=classification_performance(y, pred, score),
        fairness={"sex": fairness_evidence(counts)},
        drift=drift_evidence({"income": income}, {"income": income + rng.normal(0, 1, n)}),
        generated_at=NOW,
    )


# --- scraping -----------------------------------------------------------------------------


class Scrape:
    """One scrape of ``/metrics`` over HTTP, parsed by prometheus_client's own parser."""

    def __init__(self, server: MetricsServer) -> None:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            self.text = reply.read().decode("utf-8")
        self.samples: dict[str, dict[Labels, float]] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = (
                    sample.value)
                self.types[sample.name] = family.type

    def series(self, name: str) -> dict[Labels, float]:
        return self.samples.get(name, {})

    def value(self, name: str, **labels: str) -> float:
        return self.series(name)[_labels(**labels)]

    def label_names(self, name: str) -> set[str]:
        return {k for labels in self.series(name) for k, _ in labels}


@pytest.fixture
def metrics() -> AgentMetrics:
    return AgentMetrics("emea-1", models=["credit"], agent_version="9.9.9")


@pytest.fixture
def server(metrics: AgentMetrics) -> Iterator[MetricsServer]:
    srv = metrics.serve("127.0.0.1:0")
    yield srv
    srv.close()


def scrape(server: MetricsServer) -> Scrape:
    return Scrape(server)


PROD = {"model": "credit", "stage": "production"}


# --- per model, version and stage ---------------------------------------------------------


def test_allowed_validation_exports_its_evidence_per_model_version_and_stage(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    ev = real_evidence()
    metrics.observe_validation("credit", "3", "production", ev, "allow", [])
    s = scrape(server)
    key = {**PROD, "version": "3"}
    perf = ev["performance"]
    assert s.value("warden_model_accuracy", **key) == pytest.approx(perf["accuracy"])
    scalars = {k: v for k, v in perf.items()
               if isinstance(v, float | int) and not isinstance(v, bool) and k != "n"}
    assert {"accuracy", "f1", "roc_auc", "precision", "recall", "log_loss"} <= set(scalars)
    assert {dict(lbl)["metric"]: v for lbl, v in s.series("warden_model_metric").items()} == (
        pytest.approx(scalars))
    assert s.value("warden_model_drift_share", **key) == ev["drift"]["share_drifted"]
    fair = ev["fairness"]["sex"]
    got = {dict(lbl)["metric"]: v for lbl, v in s.series("warden_model_fairness").items()
           if dict(lbl)["feature"] == "sex"}
    expected = {m: fair[m] for m in FAIRNESS_METRICS if fair[m] is not None}
    expected[FOUR_FIFTHS_RATIO] = fair["four_fifths"]["ratio"]
    assert got == pytest.approx(expected)
    assert {"demographic_parity_difference", "equalized_odds_difference"} <= set(got)
    assert s.value("warden_decisions_total", model="credit", decision="allow") == 1
    assert s.value("warden_decisions_total", model="credit", decision="deny") == 0
    assert s.types["warden_decisions_total"] == "counter"
    assert s.types["warden_model_accuracy"] == "gauge"


def test_denied_version_is_counted_by_rule_but_is_in_no_stage(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    metrics.observe_validation("credit", "3", "production", real_evidence(), "allow", [])
    bad = real_evidence(8, flip=0.4)
    rules = ["performance.min_accuracy", "fairness.max_dpd", "fairness.max_dpd"]
    metrics.observe_validation("credit", "4", "production", bad, "deny", rules)
    metrics.observe_validation("credit", "5", "production", None, "error", [])
    s = scrape(server)
    assert s.value("warden_violations_total", model="credit",
                   rule="performance.min_accuracy") == 1
    assert s.value("warden_violations_total", model="credit", rule="fairness.max_dpd") == 2
    for decision in DECISIONS:
        assert s.value("warden_decisions_total", model="credit", decision=decision) == 1
    # Production still shows the version that runs there, not the refused ones.
    assert {dict(lbl)["version"] for lbl in s.series("warden_model_accuracy")} == {"3"}
    with pytest.raises(ValueError, match="decision must be one of"):
        metrics.observe_validation("credit", "6", "production", None, "maybe", [])


def test_a_stage_holds_one_version_and_stages_are_apart(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    metrics.observe_validation("credit", "1", "production", real_evidence(1), "allow", [])
    metrics.observe_validation("credit", "2", "staging", real_evidence(2), "allow", [])
    metrics.observe_validation("credit", "2", "production", real_evidence(2), "allow", [])
    s = scrape(server)
    seen = {(dict(lbl)["version"], dict(lbl)["stage"]) for lbl in s.series("warden_model_accuracy")}
    assert seen == {("2", "staging"), ("2", "production")}
    for name in ("warden_model_metric", "warden_model_fairness", "warden_model_drift_share"):
        assert all(dict(lbl)["version"] == "2" for lbl in s.series(name)), name


def test_null_evidence_values_have_no_series(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    ev = real_evidence()
    ev["performance"]["roc_auc"] = None
    # One group only: every disparity is null and the feature is marked unmeasurable.
    y = np.array([0, 1] * 50)
    counts = FairnessCounts.from_arrays(y, y, {"sex": np.array(["F"] * 100, dtype=object)})
    ev["fairness"] = {"sex": fairness_evidence(counts)}
    assert ev["fairness"]["sex"]["unmeasurable"] is not None
    ev = build_evidence(**{k: ev[k] for k in ("performance", "fairness", "drift")},
                        generated_at=NOW)
    metrics.observe_validation("credit", "3", "production", ev, "allow", [])
    s = scrape(server)
    assert "roc_auc" not in {dict(lbl)["metric"] for lbl in s.series("warden_model_metric")}
    assert s.series("warden_model_fairness") == {}
    assert "NaN" not in s.text


def test_regression_model_has_metrics_but_no_accuracy(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    perf = {"task": "regression", "n": 3, "mae": 1.5, "mse": 2.5, "rmse": 1.58, "r2": 0.5}
    ev = build_evidence(performance=perf, generated_at=NOW)
    metrics.observe_validation("prices", "1", "production", ev, "allow", [])
    s = scrape(server)
    assert not any(dict(lbl)["model"] == "prices" for lbl in s.series("warden_model_accuracy"))
    got = {dict(lbl)["metric"]: v for lbl, v in s.series("warden_model_metric").items()}
    assert got == {"mae": 1.5, "mse": 2.5, "rmse": 1.58, "r2": 0.5}
    # An undeclared model gets its counters at 0 on first sight.
    assert s.value("warden_rollbacks_total", model="prices") == 0


def test_monitoring_windows_update_what_they_measured(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    ev = real_evidence()
    metrics.observe_validation("credit", "3", "production", ev, "allow", [])
    key = {**PROD, "version": "3"}
    # No labels yet: accuracy stays the validation's; drift share is the window's.
    metrics.observe_window("credit", "3", "production", 0.75, None, True)
    s = scrape(server)
    assert s.value("warden_model_accuracy", **key) == pytest.approx(ev["performance"]["accuracy"])
    assert s.value("warden_model_drift_share", **key) == 0.75
    assert s.value("warden_drift_alerts_total", model="credit") == 1
    assert s.value("warden_monitoring_windows_total", model="credit") == 1
    # Labels arrived, no drift measured: accuracy moves, drift share stays.
    window = classification_performance(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 1]))
    metrics.observe_window("credit", "3", "production", None, window, False)
    s = scrape(server)
    assert s.value("warden_model_accuracy", **key) == 0.5
    assert s.value("warden_model_metric", **key, metric="f1") == pytest.approx(window["f1"])
    assert s.value("warden_model_drift_share", **key) == 0.75
    assert s.value("warden_drift_alerts_total", model="credit") == 1
    assert s.value("warden_monitoring_windows_total", model="credit") == 2
    # Fairness from the validation is kept (windows do not measure it).
    assert s.series("warden_model_fairness")


def test_rollback_and_forget_version_remove_the_stale_series(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    metrics.observe_validation("credit", "2", "production", real_evidence(2), "allow", [])
    metrics.observe_validation("credit", "3", "production", real_evidence(3), "allow", [])
    metrics.observe_validation("credit", "3", "staging", real_evidence(3), "allow", [])
    metrics.observe_rollback("credit")
    metrics.forget_version("credit", "3", "production")
    metrics.forget_version("credit", "2", "staging")  # staging holds 3: nothing happens
    s = scrape(server)
    for name in ("warden_model_accuracy", "warden_model_metric", "warden_model_drift_share",
                 "warden_model_fairness"):
        stages = {(dict(lbl)["version"], dict(lbl)["stage"]) for lbl in s.series(name)}
        assert stages == {("3", "staging")}, name
    assert s.value("warden_rollbacks_total", model="credit") == 1
    assert s.value("warden_rollbacks_impossible_total", model="credit") == 0
    metrics.observe_rollback("credit", impossible=True)
    # The version rolled back to shows up again with its first monitoring window.
    metrics.observe_window("credit", "2", "production", 0.1, None, False)
    s = scrape(server)
    assert s.value("warden_rollbacks_impossible_total", model="credit") == 1
    assert s.value("warden_model_drift_share", **PROD, version="2") == 0.1
    assert not any(dict(lbl)["stage"] == "production"
                   for lbl in s.series("warden_model_accuracy"))


# --- node-level gauges --------------------------------------------------------------------


def test_node_gauges_outbox_policy_hub_and_info(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    s = scrape(server)
    # Before anything happened: timestamps 0 (never), no policy series, counters at 0.
    assert s.value("warden_last_hub_contact_timestamp_seconds") == 0
    assert s.value("warden_last_policy_update_timestamp_seconds") == 0
    assert s.series("warden_policy_version") == {}
    assert s.value("warden_hub_misbehaviour") == 0
    for decision in DECISIONS:
        assert s.value("warden_decisions_total", model="credit", decision=decision) == 0
    assert s.value("warden_agent_info", version="9.9.9", node_id="emea-1") == 1

    metrics.set_outbox(7, 2)
    metrics.hub_contact(NOW)
    metrics.policy_applied("standard", 3, NOW - timedelta(minutes=1),
                           expires=NOW + timedelta(days=180))
    metrics.set_misbehaviour(True)
    s = scrape(server)
    assert s.value("warden_outbox_depth") == 7 and s.value("warden_outbox_unproved") == 2
    assert s.value("warden_last_hub_contact_timestamp_seconds") == NOW.timestamp()
    assert s.value("warden_last_policy_update_timestamp_seconds") == NOW.timestamp() - 60
    assert s.value("warden_policy_version", policy="standard") == 3
    assert s.value("warden_policy_expiry_timestamp_seconds", policy="standard") == (
        (NOW + timedelta(days=180)).timestamp())
    assert s.value("warden_hub_misbehaviour") == 1

    # One bundle is in force: a new name replaces the old one's series.
    metrics.policy_applied("strict", 1, NOW)
    metrics.set_misbehaviour(False)
    s = scrape(server)
    assert s.series("warden_policy_version") == {_labels(policy="strict"): 1}
    assert s.series("warden_policy_expiry_timestamp_seconds") == {}
    assert s.value("warden_hub_misbehaviour") == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        metrics.hub_contact(datetime(2026, 1, 1))


def test_each_agent_has_its_own_registry() -> None:
    a = AgentMetrics("a", models=["m"])
    b = AgentMetrics("b", models=["m"])
    a.observe_rollback("m")
    assert a.registry.get_sample_value("warden_rollbacks_total", {"model": "m"}) == 1
    assert b.registry.get_sample_value("warden_rollbacks_total", {"model": "m"}) == 0
    assert REGISTRY.get_sample_value("warden_rollbacks_total", {"model": "m"}) is None


def test_module_docstring_lists_every_exported_metric(metrics: AgentMetrics) -> None:
    populate(metrics)
    suffix = {"counter": "_total", "info": "_info"}
    exported = {f.name + suffix.get(f.type, "") for f in metrics.registry.collect()
                if f.name.startswith("warden_")}
    import agent.metrics

    documented = set(re.findall(r"``(warden_[a-z_]+)``", agent.metrics.__doc__ or ""))
    assert exported == documented


def test_fairness_metrics_are_the_evidence_keys() -> None:
    assert set(FAIRNESS_METRICS) == set(METRIC_KEYS)
    required = evidence_schema()["$defs"]["fairness_feature"]["required"]
    assert set(FAIRNESS_METRICS) <= set(required) and "four_fifths" in required


def test_importing_metrics_stays_light() -> None:
    code = ("import sys, agent.metrics\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'scipy', 'pyarrow', 'pandas', 'sklearn', 'grpc')]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"


# --- the listen address -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464",
                                   "metrics.internal:65535", "localhost:0"])
def test_parse_listen_accepts(value: str) -> None:
    assert parse_listen(value, where="agent.yaml", key="metrics.listen") == value


BAD_LISTEN = {
    "no port": "127.0.0.1",
    "empty port": "127.0.0.1:",
    "no host": ":9464",
    "port too large": "127.0.0.1:65536",
    "port not a number": "127.0.0.1:http",
    "negative port": "127.0.0.1:-1",
    "bare IPv6": "::1:9464",
    "space in host": "my host:9464",
    "a URL": "http://127.0.0.1:9464",
    "not a string": 9464,
    "empty": "",
}


@pytest.mark.parametrize("value", BAD_LISTEN.values(), ids=BAD_LISTEN.keys())
def test_parse_listen_refuses_naming_file_key_and_value(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_listen(value, where="/etc/warden/agent.yaml", key="metrics.listen")
    message = info.value.message
    assert message.startswith("/etc/warden/agent.yaml: metrics.listen ")
    assert repr(value) in message and "HOST:PORT" in message
    assert info.value.hint


def test_serve_binds_port_zero_and_close_frees_the_port(metrics: AgentMetrics) -> None:
    srv = metrics.serve("127.0.0.1:0")
    try:
        assert srv.port > 0 and srv.address == f"127.0.0.1:{srv.port}"
        assert "warden_outbox_depth" in Scrape(srv).samples
    finally:
        srv.close()
    srv.close()  # idempotent
    with pytest.raises(OSError):  # closed: nothing answers there any more
        urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5)
    again = metrics.serve(f"127.0.0.1:{srv.port}")  # the port is free again (a reload)
    try:
        assert again.port == srv.port and "warden_agent_info" in Scrape(again).samples
    finally:
        again.close()


def test_serve_on_an_occupied_or_foreign_address_is_a_config_error(
    metrics: AgentMetrics,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on '127\.0\.0\.1:{port}'"):
            metrics.serve(f"127.0.0.1:{port}", where="agent.yaml: metrics.listen")
    # 192.0.2.0/24 is TEST-NET-1: never an address of this host.
    with pytest.raises(ConfigError, match=r"agent\.yaml: metrics\.listen: cannot listen on "
                                          r"'192\.0\.2\.1:0'"):
        metrics.serve("192.0.2.1:0", where="agent.yaml: metrics.listen")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        metrics.serve("nonsense")


def test_serve_on_ipv6_loopback(metrics: AgentMetrics) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    srv = metrics.serve("[::1]:0")
    try:
        assert srv.address == f"[::1]:{srv.port}"
        with urllib.request.urlopen(f"http://[::1]:{srv.port}/metrics", timeout=10) as reply:
            assert b"warden_agent_info" in reply.read()
    finally:
        srv.close()


# --- the shipped rules --------------------------------------------------------------------


def populate(metrics: AgentMetrics) -> None:
    """Every observation once, so every metric and label set the agent can export exists."""
    metrics.observe_validation("credit", "2", "staging", real_evidence(), "allow", [])
    metrics.observe_validation("credit", "3", "production", real_evidence(), "deny",
                               ["performance.min_accuracy"])
    metrics.observe_validation("credit", "2", "production", real_evidence(), "allow", [])
    metrics.observe_window("credit", "2", "production", 0.5, None, True)
    metrics.observe_rollback("credit")
    metrics.observe_rollback("credit", impossible=True)
    metrics.set_outbox(3, 1)
    metrics.policy_applied("standard", 2, NOW, expires=NOW + timedelta(days=3))
    metrics.hub_contact(NOW)
    metrics.set_misbehaviour(True)


# PromQL words that are not metric names when not followed by '('.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"instance", "job"}
TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<matchers>\{[^}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<other>\S)
""", re.VERBOSE)
MATCHER = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?""")


def promql_references(expr: str) -> tuple[list[str], list[tuple[str, str, str, str]], set[str]]:
    """(metric names, label matchers (metric, label, op, value), grouping labels) of ``expr``."""
    names: list[str] = []
    matchers: list[tuple[str, str, str, str]] = []
    grouping: set[str] = set()
    tokens = [(m.lastgroup, m.group(), m.end()) for m in TOKEN.finditer(expr)]
    i = 0
    while i < len(tokens):
        kind, text, end = tokens[i]
        # A call: `f(...)`, or an aggregation with its grouping first (`sum by (x) (...)`).
        called = re.match(r"\s*(\(|(by|without)\s*\()", expr[end:]) is not None
        if kind == "ident" and text in LABEL_LISTS and called:
            close = expr.index(")", end)
            grouping |= {x.strip() for x in expr[end:close].strip().lstrip("(").split(",")
                         if x.strip()}
            while i < len(tokens) and tokens[i][2] <= close:
                i += 1
            i += 1
            continue
        if kind == "ident" and not called and text not in PROMQL_WORDS:
            names.append(text)
        elif kind == "matchers":
            assert names and tokens[i - 1][0] == "ident", f"matchers without a metric: {expr}"
            body = text[1:-1]
            parsed = MATCHER.findall(body)
            assert "".join(m.group() for m in MATCHER.finditer(body)).strip() == body.strip(), (
                f"unparsed matcher in {text}")
            matchers += [(names[-1], label, op, value[1:-1]) for label, op, value in parsed]
        i += 1
    return names, matchers, grouping


def test_promql_reference_extraction() -> None:
    names, matchers, grouping = promql_references(
        'sum by (model, stage) (increase(a_total{decision="deny", x!~"y.*"}[1h] offset 5m)) '
        '> 0 and on(model) b_seconds - time() < 7 * 86400 or c:rec > bool 1e3')
    assert names == ["a_total", "b_seconds", "c:rec"]
    assert matchers == [("a_total", "decision", "=", "deny"), ("a_total", "x", "!~", "y.*")]
    assert grouping == {"model", "stage"}


def load_rules() -> list[dict[str, Any]]:
    doc = strict_yaml.load(RULES.read_text(encoding="utf-8"), source=str(RULES))
    assert set(doc) == {"groups"}
    rules: list[dict[str, Any]] = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        rules += group["rules"]
    return rules


def test_rules_name_only_exported_metrics_and_labels(
    metrics: AgentMetrics, server: MetricsServer
) -> None:
    populate(metrics)
    s = scrape(server)
    rules = load_rules()
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = [r for r in rules if "alert" in r]
    assert {"ModelDrift", "DriftShareHigh", "DecisionsDenied", "RollbackHappened",
            "AgentOutboxGrowing", "AgentHubUnreachable", "PolicyStale",
            "HubMisbehaviour"} <= {a["alert"] for a in alerts}
    model_drift = next(a for a in alerts if a["alert"] == "ModelDrift")
    assert model_drift["expr"] == "warden_model_accuracy < 0.85" and model_drift["for"] == "5m"
    for rule in rules:
        what = rule.get("alert") or rule["record"]
        assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}, what
        names, matchers, grouping = promql_references(rule["expr"])
        assert names, f"{what}: names no metric"
        for name in names:
            assert name in s.samples or name in recorded, f"{what}: {name} is not exported"
        available = set().union(*(s.label_names(n) for n in names if n in s.samples))
        for name, label, op, value in matchers:
            assert label in s.label_names(name), f"{what}: {name} has no label {label}"
            if op == "=":
                seen = {dict(lbl).get(label) for lbl in s.series(name)}
                assert value in seen, f"{what}: {name}{{{label}={value!r}}} is never exported"
        assert grouping <= available | TARGET_LABELS, f"{what}: grouping by {grouping}"
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), what
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}, what
            notes = rule["annotations"]
            assert set(notes) == {"summary", "description"}, what
            # Labels an annotation shows exist on the series the alert fires for.
            shown = set(re.findall(r"\$labels\.([A-Za-z_]+)", notes["summary"] +
                                   notes["description"]))
            first = s.label_names(names[0]) if names[0] in s.samples else set()
            missing = shown - first - TARGET_LABELS
            assert not missing, f"{what}: shows labels its series lack: {missing}"
            if "model" in first:
                assert "model" in shown, f"{what}: the summary should name the model"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian 'prometheus') "
                    "is not installed")
def test_promtool_checks_the_rules_and_they_fire_on_scraped_series(
    metrics: AgentMetrics, server: MetricsServer, tmp_path: Path
) -> None:
    """``promtool check rules``, then ``promtool test rules`` on the very series a scrape
    shows: a drifting production model fires ModelDrift after 5 minutes, a healthy one
    does not, and a halted witness fires HubMisbehaviour."""
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = classification_performance(np.array([1, 0, 1, 1, 0]), np.array([1, 1, 0, 1, 0]))
    metrics.observe_validation("credit", "2", "staging", real_evidence(), "allow", [])
    metrics.observe_validation("credit", "3", "production", real_evidence(), "allow", [])
    metrics.observe_window("credit", "3", "production", 0.1, bad, False)
    metrics.hub_contact(NOW)
    metrics.policy_applied("standard", 2, NOW, expires=NOW + timedelta(days=180))
    metrics.set_misbehaviour(True)
    s = scrape(server)
    assert s.value("warden_model_accuracy", **PROD, version="3") == 0.6
    series = []
    for name in ("warden_model_accuracy", "warden_hub_misbehaviour"):
        for labels, value in s.series(name).items():
            tags = ",".join(f'{k}="{v}"' for k, v in sorted(
                {**dict(labels), "instance": "node:9464", "job": "warden"}.items()))
            series.append({"series": f"{name}{{{tags}}}", "values": f"{value}x10"})
    # A node that never reached the hub exports 0 (test_node_gauges_...); promtool's clock
    # starts at the Unix epoch, so 0 is "never" there too.
    series.append({"series": 'warden_last_hub_contact_timestamp_seconds{instance="node:9464",'
                             'job="warden"}', "values": "0x10"})
    target = {"instance": "node:9464", "job": "warden"}
    alert_labels = {**target, "model": "credit", "stage": "production", "version": "3",
                    "severity": "warning"}
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "ModelDrift", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "ModelDrift", "exp_alerts": [{
                    "exp_labels": alert_labels,
                    "exp_annotations": {
                        "summary": "credit v3 accuracy 60% in production",
                        "description": "The latest measured accuracy of model credit version "
                        "3 in stage production on node:9464 is below 0.85. If it stays below "
                        "the policy's rollback_min_accuracy for rollback_after_hours the agent "
                        "rolls production back."}}]},
                {"eval_time": "1m", "alertname": "HubMisbehaviour", "exp_alerts": [{
                    "exp_labels": {**target, "severity": "critical"},
                    "exp_annotations": {
                        "summary": "node:9464: the hub's log misbehaved",
                        "description": "The agent holds signed evidence that the hub's log is "
                        "inconsistent (rollback, fork, a dropped record or a refused proof); "
                        "its witness is halted and it prunes nothing. See the hub_misbehaviour "
                        "record and `warden agent status`."}}]},
                {"eval_time": "5m", "alertname": "AgentHubUnreachable", "exp_alerts": []},
                {"eval_time": "7m", "alertname": "AgentHubUnreachable", "exp_alerts": [{
                    "exp_labels": {**target, "severity": "warning"},
                    "exp_annotations": {
                        "summary": "node:9464: no answer from the hub for 7m 0s",
                        "description": "The agent has not reached the hub for more than 5 "
                        "minutes (or never since it started). It keeps governing under its "
                        "last good policy and queues records."}}]},
            ],
        }],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests), encoding="utf-8")
    ran = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr

