"""Model cards for a validated version: Markdown and HTML from the manifest and the evidence.

:func:`render_model_card` turns what the agent knows about one validated version — the
trainer's manifest (:class:`~agent.registry.ModelManifest`), the checks' evidence document
(``warden.evidence/v1``, :mod:`agent.checks.evidence`), the policy's decision and, when there
is one, the fairness mitigation advice and the drift report's digest — into a card with the
sections of Mitchell et al. (2019), "Model Cards for Model Reporting": model details,
intended use, factors, metrics, evaluation data, training data, quantitative analyses
(a fairness table per feature and group with 95 % intervals, the disparity metrics and the
drift table), ethical considerations, caveats and recommendations — and then the decision
(allow or deny, violations, the policy's name, version and digest, the node, the time).
:func:`write_model_card` writes ``model_card.md`` and ``model_card.html`` beside each other.

Invariants:

* **Deterministic**: the same inputs give the same bytes, so :attr:`ModelCard.markdown_sha256`
  and :attr:`ModelCard.html_sha256` can be recomputed by anyone holding the inputs. The only
  time in a card is ``generated_at`` (and the times in the inputs); mappings are rendered in
  sorted key order and numbers in one fixed format (:func:`_fmt`).
* **Aggregates only**: a card is built from the evidence document, which holds counts, rates,
  statistics and digests — never a row. Nothing here opens the data.
* **Nothing a value holds becomes markup**: the HTML is rendered with Jinja2's autoescape (a
  model name ``<script>`` is text); in Markdown every interpolated value has its inline
  markup characters backslash-escaped (a ``|`` cannot split a table cell), newlines become
  spaces, and the trainer's own card is quoted verbatim inside a fence longer than any
  backtick run it contains. Only the templates' own text is markup.
* **Self-contained HTML**: one file, inline CSS, no JavaScript, no external resource, and a
  Content-Security-Policy that forbids scripts and remote loads anyway.
* **Malformed input is refused**, never rendered as a half card: an evidence document of
  another schema, a section of the wrong type, a decision without ``allow`` — each a
  :class:`~trust.errors.FormatError` naming the field and the value.
* Files are replaced whole (:func:`trust._internal.files.replace_file`).

Importing this module is light (no Jinja2, NumPy or jsonschema): Jinja2 is imported when a
card is rendered.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks.metric_names import METRIC_KEYS
from trust._internal.files import replace_file
from trust._internal.frozen import thaw
from trust.canonical import canonical_json, sha256_hex
from trust.errors import FormatError, StorageFullError, StorageUnavailableError
from trust.record import PolicyRef
from trust.timeutil import format_time

if TYPE_CHECKING:
    import jinja2

    from agent.registry import ModelManifest

__all__ = [
    "CARDS_DIR",
    "EVIDENCE_SCHEMA",
    "HTML_FILE",
    "MARKDOWN_FILE",
    "SECTIONS",
    "ModelCard",
    "render_model_card",
    "card_dir",
    "write_model_card",
]

CARDS_DIR = "cards"
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"
EVIDENCE_SCHEMA = "warden.evidence/v1"
TEMPLATES_DIR = Path(__file__).with_name("templates")

SECTIONS: tuple[tuple[str, str], ...] = (
    ("model-details", "Model details"),
    ("intended-use", "Intended use"),
    ("factors", "Factors"),
    ("metrics", "Metrics"),
    ("evaluation-data", "Evaluation data"),
    ("training-data", "Training data"),
    ("quantitative-analyses", "Quantitative analyses"),
    ("ethical-considerations", "Ethical considerations"),
    ("caveats-and-recommendations", "Caveats and recommendations"),
    ("decision", "Decision"),
)
"""``(anchor, heading)`` of every section, in order: Mitchell et al.'s nine, then the decision."""

_NONE = "—"
_RATES = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy")
_RATE_NAMES = {
    "selection_rate": "Selection rate",
    "tpr": "TPR",
    "fpr": "FPR",
    "fnr": "FNR",
    "tnr": "TNR",
    "precision": "Precision",
    "accuracy": "Accuracy",
}
_DISPARITIES = METRIC_KEYS
_EVIDENCE_SECTIONS = ("data", "performance", "fairness", "drift", "lineage", "documentation")
_LINEAGE_SHOWN = frozenset({
    "manifest_present", "model_name", "model_version", "model_sha256", "model_sha256_declared",
    "model_sha256_verified", "code_commit", "code_repository", "parameters", "data_source",
    "data_sha256", "data_sha256_actual", "data_sha256_verified", "data_rows", "trained_at",
    "data_snapshot_date", "data_age_days", "dvc",
})  # fmt: skip
# Characters with inline meaning in CommonMark / GitHub Markdown (emphasis, code, links,
# raw HTML, entities, table cells, strikethrough, math, headings); all are ASCII
# punctuation, which CommonMark lets a backslash escape.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~$#!])")
_NEWLINES = re.compile(r"\r\n|\r|\n|\u2028|\u2029")


@dataclass(frozen=True)
class ModelCard:
    """A rendered model card: the Markdown and the HTML of the same content."""

    markdown: str
    html: str

    @property
    def markdown_sha256(self) -> str:
        """Lowercase hex SHA-256 of the Markdown's UTF-8 bytes (what ``model_card.md`` holds)."""
        return hashlib.sha256(self.markdown.encode("utf-8")).hexdigest()

    @property
    def html_sha256(self) -> str:
        """Lowercase hex SHA-256 of the HTML's UTF-8 bytes (what ``model_card.html`` holds)."""
        return hashlib.sha256(self.html.encode("utf-8")).hexdigest()


# --- reading the inputs (typed, naming the field on error) -------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _opt_obj(value: Any, where: str) -> Mapping[str, Any] | None:
    return None if value is None else _obj(value, where)


def _seq(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise FormatError(f"{where}: expected a list, got {_kind(value)}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _number(value: Any, where: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{where}: expected a number or null, got {_kind(value)}")
    return value


def _interval(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = _seq(value, where)
    if len(pair) != 2:
        raise FormatError(f"{where}: expected an interval [low, high], got {len(pair)} values")
    low, high = (_number(v, f"{where}[{i}]") for i, v in enumerate(pair))
    if low is None or high is None:
        raise FormatError(f"{where}: an interval's bounds are numbers, got null")
    return float(low), float(high)


# --- formatting -------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """One fixed text form per value: the card's bytes depend on nothing else."""
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return _NONE
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4f}"
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return format_time(value) if value.tzinfo is not None else value.isoformat()
    return json.dumps(thaw(value), sort_keys=True, ensure_ascii=False, default=str)


def _exact(value: Any) -> str:
    """A trainer-declared value as declared: text as is, anything else as sorted JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(thaw(value), sort_keys=True, ensure_ascii=False, default=str)


def _fmt_ci(value: Any, ci: tuple[float, float] | None) -> str:
    text = _fmt(value)
    if ci is None or value is None:
        return text
    return f"{text} ({_fmt(ci[0])}–{_fmt(ci[1])})"


def _verified(value: Any, *, yes: str, no: str, unknown: str) -> str:
    return unknown if value is None else (yes if value else no)


def _md_escape(value: Any) -> str:
    """``value`` as Markdown inline text: markup characters backslash-escaped, one line."""
    text = value if isinstance(value, str) else _fmt(value)
    return _MD_SPECIAL.sub(r"\\\1", _NEWLINES.sub(" ", text))


def _md_finalize(value: Any) -> Any:
    """Every ``{{ }}`` of the Markdown template goes through here: escaped unless the
    module built it as Markdown itself (a :class:`markupsafe.Markup`, e.g. the fenced
    trainer card)."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return str(value)
    return _md_escape(value)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md_escape(c) or " " for c in cells) + " |"


def _md_table(table: _Table) -> Any:
    """A GitHub-flavoured Markdown table, every cell escaped (a ``|`` cannot split one)."""
    from markupsafe import Markup

    lines = [_md_row(table.headers), "|" + " --- |" * len(table.headers)]
    return Markup("\n".join(lines + [_md_row(r) for r in table.rows]))


def _md_fields(items: Sequence[tuple[str, str]]) -> Any:
    """A Markdown list of ``label: value`` lines, both escaped."""
    from markupsafe import Markup

    return Markup("\n".join(f"- **{_md_escape(k)}:** {_md_escape(v)}" for k, v in items))


def _md_list(items: Sequence[str]) -> Any:
    """A Markdown list, every item escaped."""
    from markupsafe import Markup

    return Markup("\n".join(f"- {_md_escape(v)}" for v in items))


def _md_fence(text: str) -> str:
    """``text`` verbatim in a fenced code block whose fence no line of it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}text\n{body}{fence}"


# --- the context the templates render (strings only, built once for both formats) -------------


@dataclass(frozen=True)
class _Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> _Table:
    return _Table(tuple(headers), tuple(tuple(r) for r in rows))


def _violations(decision: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for i, v in enumerate(_seq(decision.get("violations", []), "decision.violations")):
        where = f"decision.violations[{i}]"
        if isinstance(v, str):  # a deny_rules bundle's plain message
            out.append({"rule": "", "message": v, "severity": "error"})
            continue
        o = _obj(v, where)
        out.append({
            "rule": _str(o.get("rule", ""), f"{where}.rule"),
            "message": _str(o.get("message", ""), f"{where}.message"),
            "severity": _str(o.get("severity", "error"), f"{where}.severity"),
        })
    return sorted(out, key=lambda v: (v["rule"], v["message"], v["severity"]))


def _family(violations: Sequence[Mapping[str, str]], family: str) -> list[str]:
    return [
        f"{v['rule']} ({v['severity']}): {v['message']}"
        for v in violations
        if v["rule"].split(".", 1)[0] == family
    ]


def _details(manifest: ModelManifest, lineage: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    lin = lineage or {}
    params = thaw(manifest.parameters)
    declared = manifest.artefact_sha256 or lin.get("model_sha256_declared")
    return [
        ("Name", manifest.name),
        ("Version", manifest.version),
        ("Owner", _fmt(manifest.owner)),
        ("Framework", _fmt(manifest.framework)),
        ("Artefact", f"{manifest.artefact} ({manifest.artefact_kind.value})"),
        ("Artefact SHA-256 (declared)", _fmt(declared)),
        ("Artefact SHA-256 (measured at this node)", _fmt(lin.get("model_sha256"))),
        ("Artefact digest check", _verified(
            lin.get("model_sha256_verified"), yes="the measured digest equals the declared one",
            no="MISMATCH: the measured digest differs from the declared one",
            unknown="nothing to compare (no declared or no measured digest)")),
        ("Trained at", _fmt(manifest.trained_at or lin.get("trained_at"))),
        ("Code commit", _fmt(manifest.code_commit or lin.get("code_commit"))),
        ("Code repository", _fmt(lin.get("code_repository"))),
        ("Input features", ", ".join(manifest.features) if manifest.features else _NONE),
        ("Parameters", ", ".join(f"{k}={_exact(params[k])}" for k in sorted(params)) or _NONE),
    ]


def _performance(perf: Mapping[str, Any] | None,
                 violations: Sequence[Mapping[str, str]]) -> dict[str, Any] | None:
    if perf is None:
        return None
    findings: dict[str, list[str]] = {}
    for v in violations:
        family, _, name = v["rule"].partition(".")
        if family == "performance":
            metric = re.sub(r"^(min|max)_", "", name)
            findings.setdefault(metric, []).append(v["message"])
    rows = []
    for key in sorted(perf):
        value = perf[key]
        if key == "task" or isinstance(value, Mapping | list | tuple):
            continue
        _number(value, f"evidence.performance.{key}")
        rows.append((key, _fmt(value), "; ".join(findings.get(key, [])) or _NONE))
    out: dict[str, Any] = {
        "task": _fmt(perf.get("task")),
        "table": _table(("Metric", "Value", "Policy finding"), rows),
        "confusion": None,
        "per_class": None,
    }
    cm = _opt_obj(perf.get("confusion_matrix"), "evidence.performance.confusion_matrix")
    if cm is not None and "labels" not in cm:
        out["confusion"] = _table(
            ("", "Predicted negative", "Predicted positive"),
            [("Actual negative", _fmt(cm.get("tn")), _fmt(cm.get("fp"))),
             ("Actual positive", _fmt(cm.get("fn")), _fmt(cm.get("tp")))],
        )
    elif cm is not None:
        labels = [_fmt(x) for x in _seq(cm.get("labels"), "evidence.performance."
                                                            "confusion_matrix.labels")]
        matrix = _seq(cm.get("matrix"), "evidence.performance.confusion_matrix.matrix")
        out["confusion"] = _table(
            ("Actual \\ predicted", *labels),
            [(labels[i] if i < len(labels) else str(i),
              *(_fmt(c) for c in _seq(row, f"evidence.performance.confusion_matrix.matrix[{i}]")))
             for i, row in enumerate(matrix)],
        )
    per_class = _opt_obj(perf.get("per_class"), "evidence.performance.per_class")
    if per_class:
        cols = ("precision", "recall", "f1", "support", "share")
        out["per_class"] = _table(
            ("Class", "Precision", "Recall", "F1", "Support", "Share"),
            [(str(c), *(_fmt(_obj(per_class[c], f"evidence.performance.per_class.{c}").get(k))
                        for k in cols)) for c in sorted(per_class)],
        )
    return out


def _groups(feature: str, entry: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    groups = _obj(entry.get("groups"), f"evidence.fairness.{feature}.groups")
    return [(g, _obj(groups[g], f"evidence.fairness.{feature}.groups.{g}")) for g in sorted(groups)]


def _fairness_feature(feature: str, entry: Mapping[str, Any],
                      violations: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    where = f"evidence.fairness.{feature}"
    rows = []
    for name, g in _groups(feature, entry):
        n = _fmt(_number(g.get("n"), f"{where}.groups.{name}.n"))
        if g.get("suppressed"):
            rows.append((name, n, *(["suppressed"] * len(_RATES))))
            continue
        ci = _opt_obj(g.get("ci"), f"{where}.groups.{name}.ci") or {}
        rows.append((name, n, *(
            _fmt_ci(_number(g.get(r), f"{where}.groups.{name}.{r}"),
                    _interval(ci.get(r), f"{where}.groups.{name}.ci.{r}"))
            for r in _RATES)))
    overall = _opt_obj(entry.get("overall"), f"{where}.overall") or {}
    rows.append(("(all rows)", _fmt(entry.get("n")), *(_fmt(overall.get(r)) for r in _RATES)))
    to_overall = _opt_obj(entry.get("to_overall"), f"{where}.to_overall") or {}
    disparity = []
    for metric in _DISPARITIES:
        found = [v["message"] for v in violations
                 if v["rule"] == f"fairness.{metric}" and v["message"].startswith(f"{feature}:")]
        disparity.append((metric, _fmt(_number(entry.get(metric), f"{where}.{metric}")),
                          _fmt(_number(to_overall.get(metric), f"{where}.to_overall.{metric}")),
                          "; ".join(found) or _NONE))
    ff = _opt_obj(entry.get("four_fifths"), f"{where}.four_fifths")
    four_fifths = None
    if ff is not None:
        four_fifths = [
            ("Threshold", _fmt(ff.get("threshold"))),
            ("Selection-rate ratio (min / max)", _fmt(ff.get("ratio"))),
            ("Passed", _verified(ff.get("passed"), yes="yes", no="NO", unknown="not measurable")),
            ("Reference group", _fmt(ff.get("reference_group"))),
            ("Failing groups", ", ".join(map(_fmt, ff.get("failing_groups") or ())) or _NONE),
            ("Policy finding", "; ".join(
                v["message"] for v in violations if v["rule"] == "fairness.four_fifths_rule"
                and v["message"].startswith(f"{feature}:")) or _NONE),
        ]
    unmeasurable = _opt_obj(entry.get("unmeasurable"), f"{where}.unmeasurable")
    features = [_fmt(f) for f in _seq(entry.get("features") or [feature], f"{where}.features")]
    return {
        "key": feature,
        "features": ", ".join(features),
        "weighted": bool(entry.get("weighted")),
        "groups": _table(
            ("Group", "n", *(f"{_RATE_NAMES[r]} (95% CI)" for r in _RATES)), rows),
        "disparity": _table(("Metric", "Between groups", "To overall", "Policy finding"),
                            disparity),
        "four_fifths": four_fifths,
        "unmeasurable": None if unmeasurable is None else _fmt(unmeasurable.get("reason")),
    }


def _factors(fairness: Mapping[str, Any] | None) -> _Table | None:
    if not fairness:
        return None
    rows = []
    for feature in sorted(fairness):
        entry = _obj(fairness[feature], f"evidence.fairness.{feature}")
        groups = _groups(feature, entry)
        suppressed = [name for name, g in groups if g.get("suppressed")]
        rows.append((
            feature,
            ", ".join(f"{name} ({_fmt(g.get('n'))})" for name, g in groups) or _NONE,
            _fmt(entry.get("min_group_size")),
            ", ".join(suppressed) or _NONE,
            "yes" if entry.get("unmeasurable") is None else "NO",
        ))
    return _table(("Sensitive feature", "Groups (rows)", "Minimum group size",
                   "Suppressed groups", "Measurable"), rows)


def _drift(drift: Mapping[str, Any] | None, report: Mapping[str, Any] | None,
           violations: Sequence[Mapping[str, str]]) -> dict[str, Any] | None:
    if drift is None and report is None:
        return None
    out: dict[str, Any] = {"summary": None, "table": None, "report": None,
                           "findings": _family(violations, "drift")}
    if drift is not None:
        columns = _obj(drift.get("columns"), "evidence.drift.columns")
        rows = []
        for name in sorted(columns):
            c = _obj(columns[name], f"evidence.drift.columns.{name}")
            rows.append((name, _fmt(c.get("column_type")), _fmt(c.get("method")),
                         _fmt(_number(c.get("statistic"), f"evidence.drift.columns.{name}."
                                                          "statistic")),
                         _fmt(c.get("threshold")), "YES" if c.get("drifted") else "no",
                         _fmt(c.get("exact"))))
        out["table"] = _table(("Column", "Type", "Method", "Statistic", "Threshold", "Drifted",
                               "Exact reference"), rows)
        out["summary"] = [
            ("Columns compared", _fmt(drift.get("number_of_columns"))),
            ("Columns drifted", _fmt(drift.get("number_drifted"))),
            ("Share drifted", _fmt(drift.get("share_drifted"))),
            ("Dataset drift threshold (share)", _fmt(drift.get("drift_share"))),
            ("Dataset drift", "YES" if drift.get("dataset_drift") else "no"),
        ]
    if report is not None:
        out["report"] = [
            ("Drift report", _str(report.get("file"), "drift_report.file")),
            ("Drift report SHA-256", _str(report.get("sha256"), "drift_report.sha256")),
        ]
    return out


def _dvc(dvc: Any) -> tuple[list[tuple[str, str]], _Table | None]:
    """The DVC pointer's verification (``lineage.dvc``): fields, and a table of its entries."""
    if dvc is None:
        return [], None
    d = _obj(dvc, "evidence.lineage.dvc")
    verdict = "verified: every checked entry's recomputed MD5 equals the pointer's" \
        if d.get("verified") is True else "NOT VERIFIED"
    if d.get("error") is not None:
        verdict += f" ({_fmt(d.get('error'))})"
    fields = [("DVC pointer", _fmt(d.get("pointer"))), ("DVC verification", verdict)]
    known = {"pointer", "verified", "error", "outs"}
    fields += [kv for k in sorted(d) if k not in known for kv in _flatten(f"DVC {k}", d[k])]
    outs = _seq(d.get("outs") or [], "evidence.lineage.dvc.outs")
    rows = []
    for i, o in enumerate(outs):
        e = _obj(o, f"evidence.lineage.dvc.outs[{i}]")
        problem = " ".join(_fmt(e[k]) for k in ("error", "reason") if e.get(k) is not None)
        rows.append((_fmt(e.get("path")), _fmt(e.get("expected_md5")),
                     _fmt(e.get("actual_md5")), "yes" if e.get("verified") is True else "NO",
                     problem or _NONE))
    table = None if not rows else _table(
        ("DVC entry", "MD5 in the pointer", "MD5 recomputed", "Verified", "Problem"), rows)
    return fields, table


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [kv for k in sorted(value, key=str)
                for kv in _flatten(f"{prefix}.{k}" if prefix else str(k), value[k])]
    return [(prefix, _fmt(value))]


def _advice(advice: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if advice is None:
        return None
    feasible = advice.get("feasible")
    if feasible is True:
        verdict = "a post-processing of the model's scores exists that meets the policy"
    elif feasible is False:
        verdict = "no post-processing of the model's scores was found that meets the policy"
    else:
        verdict = "feasibility not determined"
    fields = [
        ("Method", _fmt(advice.get("method"))),
        ("Constraint", _fmt(advice.get("constraint"))),
        ("Outcome", verdict),
        ("Accuracy before mitigation",
         _fmt(_number(advice.get("accuracy_before"), "advice.accuracy_before"))),
        ("Accuracy after mitigation",
         _fmt(_number(advice.get("accuracy_after"), "advice.accuracy_after"))),
    ]
    known = {"method", "constraint", "feasible", "accuracy_before", "accuracy_after",
             "metrics_before", "metrics_after"}
    fields += [kv for k in sorted(advice) if k not in known for kv in _flatten(k, advice[k])]
    before = _opt_obj(advice.get("metrics_before"), "advice.metrics_before") or {}
    after = _opt_obj(advice.get("metrics_after"), "advice.metrics_after") or {}
    names = sorted({*before, *after})
    return {
        "fields": fields,
        "metrics": None if not names else _table(
            ("Metric", "Before", "After"),
            [(n, _fmt(before.get(n)), _fmt(after.get(n))) for n in names]),
    }


def _caveats(evidence: Mapping[str, Any], decision_warnings: Sequence[str]) -> list[str]:
    out: list[str] = []
    for section in _EVIDENCE_SECTIONS:
        if evidence.get(section) is None:
            out.append(f"No {section} evidence: that check did not run at this node, so this "
                       "card says nothing measured about it.")
    fairness = evidence.get("fairness") or {}
    for feature in sorted(fairness):
        entry = fairness[feature]
        unmeasurable = entry.get("unmeasurable")
        if unmeasurable is not None:
            usable = ", ".join(map(str, unmeasurable.get("usable_groups") or ())) or "none"
            out.append(f"Fairness for {feature} could not be measured: "
                       f"{unmeasurable.get('reason')} (usable groups: {usable}).")
        suppressed = [(g, e) for g, e in _groups(feature, entry) if e.get("suppressed")]
        if suppressed:
            names = ", ".join(f"{g} ({_fmt(e.get('n'))} rows)" for g, e in suppressed)
            out.append(
                f"{feature}: groups with fewer than {_fmt(entry.get('min_group_size'))} rows "
                f"are suppressed — reported by size only and left out of every rate and "
                f"disparity: {names}. Their metrics are unknown, not fair. Suppression is for "
                "statistical reliability, not privacy: a suppressed group's counts can be "
                "recovered by subtraction.")
    perf = evidence.get("performance") or {}
    for key in sorted(perf):
        if perf[key] is None:
            out.append(f"Performance metric {key} was not computed (for example no scores, "
                       "or only one class in the data).")
    drift = evidence.get("drift") or {}
    columns = drift.get("columns") or {}
    for name in sorted(columns):
        if columns[name].get("statistic") is None:
            out.append(f"Drift of column {name} could not be measured (no statistic).")
    lineage = evidence.get("lineage") or {}
    if lineage:
        if lineage.get("model_sha256_verified") is False:
            out.append("The artefact's measured SHA-256 differs from the declared one.")
        if lineage.get("data_sha256_verified") is False:
            out.append("The training data's measured SHA-256 differs from the declared one.")
        elif lineage.get("data_sha256_verified") is None:
            out.append("The training data's digest was not verified at this node (no file to "
                       "recompute it from, or no declared digest).")
        dvc = lineage.get("dvc")
        if isinstance(dvc, Mapping) and dvc.get("verified") is not True:
            out.append(f"The training data's DVC pointer {_fmt(dvc.get('pointer'))} does not "
                       "verify: the data on disk is not what DVC recorded (see Training data).")
    documentation = evidence.get("documentation") or {}
    if documentation:
        if not documentation.get("model_card_present"):
            out.append("The trainer shipped no model card; this card is built from the "
                       "manifest and the node's evidence alone.")
        elif documentation.get("missing_sections"):
            out.append("The trainer's model card lacks the sections: "
                       + ", ".join(map(str, documentation["missing_sections"])) + ".")
        if not documentation.get("explainability_present"):
            out.append("No explainability artefact was shipped with the model.")
    out += [f"Policy warning: {w}" for w in decision_warnings]
    data = evidence.get("data") or {}
    where = f" ({data.get('name')}, {_fmt(data.get('rows'))} rows)" if data else ""
    out.append(f"Every figure here was measured on this node's own evaluation data{where}; "
               "it may not hold for other populations or for data that has drifted since.")
    return out


def _ethics(fairness: Mapping[str, Any] | None, violations: Sequence[Mapping[str, str]],
            policy: PolicyRef) -> list[str]:
    if not fairness:
        return ["No fairness evidence: no sensitive feature was evaluated at this node, so "
                "nothing is known here about the model's effect on groups of people."]
    lines = [f"Fairness was measured for {len(fairness)} sensitive feature(s) or "
             f"intersection(s): {', '.join(sorted(fairness))}."]
    for feature in sorted(fairness):
        entry = fairness[feature]
        if entry.get("unmeasurable") is not None:
            lines.append(f"{feature}: not measurable (see Caveats).")
            continue
        ff = entry.get("four_fifths") or {}
        passed = _verified(ff.get("passed"), yes="passes", no="FAILS", unknown="is not measurable")
        lines.append(
            f"{feature}: demographic parity difference "
            f"{_fmt(entry.get('demographic_parity_difference'))}, equalized odds difference "
            f"{_fmt(entry.get('equalized_odds_difference'))}; the four-fifths rule {passed} "
            f"(ratio {_fmt(ff.get('ratio'))}, reference group {_fmt(ff.get('reference_group'))}).")
    found = _family(violations, "fairness")
    if found:
        lines.append(f"Under policy {policy.name} v{policy.version} the fairness outcome is a "
                     f"FAILURE: {len(found)} fairness violation(s).")
    else:
        lines.append(f"Under policy {policy.name} v{policy.version} there is no fairness "
                     "violation.")
    return lines


def _context(
    *,
    manifest: ModelManifest,
    evidence: Mapping[str, Any],
    decision: Mapping[str, Any],
    policy: PolicyRef,
    node_id: str,
    generated_at: dt.datetime,
    advice: Mapping[str, Any] | None,
    drift_report: Mapping[str, Any] | None,
    trainer_card: str | None,
) -> dict[str, Any]:
    evidence = _obj(evidence, "evidence")
    if evidence.get("schema") != EVIDENCE_SCHEMA:
        raise FormatError(f"evidence.schema: expected {EVIDENCE_SCHEMA!r}, got "
                          f"{_kind(evidence.get('schema'))}")
    decision = _obj(decision, "decision")
    allow = decision.get("allow")
    if not isinstance(allow, bool):
        raise FormatError(f"decision.allow: expected a boolean, got {_kind(allow)}")
    if not isinstance(policy, PolicyRef):
        raise FormatError(f"policy: expected a PolicyRef, got {_kind(policy)}")
    if not isinstance(generated_at, dt.datetime) or generated_at.tzinfo is None:
        raise FormatError(f"generated_at: expected a timezone-aware datetime, got "
                          f"{generated_at!r}", hint="Warden times are UTC")
    violations = _violations(decision)
    warnings = sorted(_str(w, f"decision.warnings[{i}]")
                      for i, w in enumerate(_seq(decision.get("warnings", []),
                                                 "decision.warnings")))
    sections = {s: _opt_obj(evidence.get(s), f"evidence.{s}") for s in _EVIDENCE_SECTIONS}
    fairness, lineage, data = sections["fairness"], sections["lineage"], sections["data"]
    advice = _opt_obj(advice, "advice")
    drift_report = _opt_obj(drift_report, "drift_report")
    trainer_card = _opt_str(trainer_card, "trainer_card")

    evaluation = None
    if data is not None:
        evaluation = [
            ("File", _fmt(_str(data.get("name"), "evidence.data.name"))),
            ("Format", _fmt(data.get("format"))),
            ("Rows", _fmt(_number(data.get("rows"), "evidence.data.rows"))),
            ("SHA-256", _fmt(_opt_str(data.get("sha256"), "evidence.data.sha256"))),
        ]
    lin = lineage or {}
    training = [
        ("Source (manifest)", _fmt(manifest.training_data_uri or lin.get("data_source"))),
        ("SHA-256 (declared)", _fmt(manifest.training_data_sha256 or lin.get("data_sha256"))),
        ("SHA-256 (measured at this node)", _fmt(lin.get("data_sha256_actual"))),
        ("Lineage verification", _verified(
            lin.get("data_sha256_verified"), yes="verified: the measured digest equals the "
            "declared one", no="MISMATCH: the measured digest differs from the declared one",
            unknown="not verified (no file to recompute the digest from, or none declared)")),
        ("Rows", _fmt(lin.get("data_rows"))),
        ("Snapshot date", _fmt(lin.get("data_snapshot_date"))),
        ("Age at validation (days)", _fmt(lin.get("data_age_days"))),
    ]
    training += [kv for k in sorted(lin) if k not in _LINEAGE_SHOWN
                 for kv in _flatten(k, lin[k])]
    dvc_fields, dvc_table = _dvc(lin.get("dvc"))
    training += dvc_fields
    policy_input = evidence.get("policy_input")
    decision_fields = [
        ("Outcome", ("ALLOWED: promotion to " if allow else "DENIED: not promoted to ")
         + manifest.target_stage),
        ("Policy", policy.name),
        ("Policy version", str(policy.version)),
        ("Policy digest (SHA-256)", policy.digest),
        ("Node", _str(node_id, "node_id")),
        ("Card generated at", format_time(generated_at)),
        ("Evidence generated at", _fmt(evidence.get("generated_at"))),
        ("Evidence SHA-256 (RFC 8785)", sha256_hex(canonical_json(thaw(evidence)))),
    ]
    if isinstance(policy_input, Mapping) and policy_input.get("sha256") is not None:
        decision_fields.append(("Policy input SHA-256", _fmt(policy_input["sha256"])))
    fairness_entries = [
        _fairness_feature(f, _obj(entry, f"evidence.fairness.{f}"), violations)
        for f, entry in sorted((fairness or {}).items())
    ]
    return {
        "sections": SECTIONS,
        "name": manifest.name,
        "version": manifest.version,
        "generated_at": format_time(generated_at),
        "node_id": node_id,
        "details": _details(manifest, lineage),
        "intended_use": manifest.intended_use,
        "target_stage": manifest.target_stage,
        "factors": _factors(fairness),
        "metrics": _performance(sections["performance"], violations),
        "evaluation": evaluation,
        "training": training,
        "dvc": dvc_table,
        "lineage_findings": _family(violations, "lineage"),
        "documentation_findings": _family(violations, "documentation"),
        "fairness": fairness_entries,
        "drift": _drift(sections["drift"], drift_report, violations),
        "ethics": _ethics(fairness, violations, policy),
        "fairness_findings": _family(violations, "fairness"),
        "advice": _advice(advice),
        "caveats": _caveats(sections, warnings),
        "allow": allow,
        "decision": decision_fields,
        "violations": _table(("Rule", "Severity", "Message"),
                             [(v["rule"] or _NONE, v["severity"], v["message"])
                              for v in violations]),
        "warnings": warnings,
        "trainer_card": trainer_card,
    }


# --- rendering -------------------------------------------------------------------------------


@cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    """(Markdown, HTML) environments on ``agent/templates``, built once per process."""
    import jinja2

    def env(**kw: Any) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            **kw,
        )

    md = env(autoescape=False, finalize=_md_finalize)
    md.globals.update(md_table=_md_table, md_fields=_md_fields, md_list=_md_list)
    html = env(autoescape=True)
    return md, html


def _render(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound:
        raise FormatError(f"{TEMPLATES_DIR / name}: model card template is missing",
                          hint="reinstall warden: the templates ship as package data") from None


def render_model_card(
    *,
    manifest: ModelManifest,
    evidence: Mapping[str, Any],
    decision: Mapping[str, Any],
    policy: PolicyRef,
    node_id: str,
    generated_at: dt.datetime,
    advice: Mapping[str, Any] | None = None,
    drift_report: Mapping[str, Any] | None = None,
    trainer_card: str | None = None,
) -> ModelCard:
    """The model card of one validated version, in Markdown and HTML.

    ``evidence`` is the checks' evidence document (``warden.evidence/v1``; extra top-level
    keys such as the record's ``policy_input`` are allowed); ``decision`` holds ``allow``,
    ``violations`` (objects with ``rule``, ``message``, ``severity``) and ``warnings``
    (other keys are ignored, so :meth:`trust.policy.decision.Decision.to_dict` fits);
    ``policy`` is the bundle decided under; ``generated_at`` (timezone-aware) is the card's
    only time. ``advice`` is the fairness mitigation advice (``method``, ``constraint``,
    ``feasible``, ``accuracy``, ``metrics``, ...), ``drift_report`` the drift report's
    ``{"file", "sha256"}``, ``trainer_card`` the text of the card the trainer shipped (quoted
    verbatim as an appendix). Malformed input is a FormatError naming the field.
    """
    context = _context(manifest=manifest, evidence=evidence, decision=decision, policy=policy,
                       node_id=node_id, generated_at=generated_at, advice=advice,
                       drift_report=drift_report, trainer_card=trainer_card)
    md_env, html_env = _environments()
    from markupsafe import Markup

    md_context = {**context, "trainer_card_md": None if trainer_card is None
                  else Markup(_md_fence(trainer_card))}
    return ModelCard(
        markdown=_render(md_env, "model_card.md.j2", md_context),
        html=_render(html_env, "model_card.html.j2", context),
    )


def _storage_error(path: Path, exc: OSError) -> StorageUnavailableError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: cannot write the model card ({reason})",
                                hint="free disk space")
    return StorageUnavailableError(f"{path}: cannot write the model card ({reason})")


def card_dir(state_dir: Path, model: str, version: str) -> Path:
    """Where the node keeps the card (and the drift reports) of one model version:
    ``state_dir/cards/<model>/<version>/`` (model and version are registry-checked names)."""
    return state_dir / CARDS_DIR / model / version


def write_model_card(card: ModelCard, directory: Path) -> tuple[Path, Path]:
    """Write ``model_card.md`` and ``model_card.html`` into ``directory`` (created if
    missing), each replaced whole; return their paths (Markdown, HTML).

    A reader sees each file old or new, never torn. The two are two renames, so a crash
    between them can leave a new Markdown beside an old HTML; the record's digests say which
    is which. OSError becomes StorageUnavailableError (StorageFullError on a full disk).
    """
    md_path, html_path = directory / MARKDOWN_FILE, directory / HTML_FILE
    for path, text in ((md_path, card.markdown), (html_path, card.html)):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            replace_file(path, text.encode("utf-8"))
        except OSError as exc:
            raise _storage_error(path, exc) from None
    return md_path, html_path
