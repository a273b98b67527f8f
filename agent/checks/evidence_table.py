"""The evidence document as plain-text tables for a terminal (``warden check run --format
table``).

Presentation only: it reads the evidence dict as :mod:`agent.checks.evidence` builds it (and
as ``evidence.schema.json`` describes it), computes nothing, and leaves the JSON untouched —
policies and auditors read the JSON, never this text. Suppressed fairness groups are shown by
size only, as in the evidence.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_table"]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _rows(title: str, rows: list[tuple[str, Any]]) -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    out = [title, "-" * len(title)]
    out += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    return out + [""]


def render_table(ev: dict[str, Any]) -> str:
    """The evidence as plain-text tables for a terminal."""
    lines: list[str] = []
    data = ev.get("data")
    if data:
        lines += _rows(
            "Data",
            [
                ("file", data["name"]),
                ("rows", data["rows"]),
                ("sha256", (data.get("sha256") or "-")[:16]),
            ],
        )
    perf = ev.get("performance")
    if perf:
        skip = {"task", "confusion_matrix", "per_class", "classes"}
        rows = [(k, v) for k, v in perf.items() if k not in skip]
        if perf["task"] == "binary":
            cm = perf["confusion_matrix"]
            rows.append(("confusion (tn fp fn tp)", f"{cm['tn']} {cm['fp']} {cm['fn']} {cm['tp']}"))
        lines += _rows(f"Performance ({perf['task']})", rows)
    for key, fe in (ev.get("fairness") or {}).items():
        head = f"Fairness: {key}"
        lines += [head, "-" * len(head)]
        cols = ("n", "selection_rate", "tpr", "fpr", "precision", "accuracy")
        gw = max([len("group")] + [len(g) for g in fe["groups"]])
        lines.append("  " + f"{'group':<{gw}}" + "".join(f"{c:>16}" for c in cols))
        for g, e in fe["groups"].items():
            if e.get("suppressed"):
                cells = f"{_fmt(e['n']):>16}" + f"{'(suppressed)':>16}"
            else:
                cells = "".join(f"{_fmt(e.get(c)):>16}" for c in cols)
            lines.append("  " + f"{g:<{gw}}" + cells)
        if fe.get("unmeasurable"):
            lines += ["", f"  unmeasurable: {fe['unmeasurable']['reason']}", ""]
            continue
        ff = fe["four_fifths"]
        summary = [
            ("demographic parity difference", fe["demographic_parity_difference"]),
            ("demographic parity ratio", fe["demographic_parity_ratio"]),
            ("equalized odds difference", fe["equalized_odds_difference"]),
            ("equalized odds ratio", fe["equalized_odds_ratio"]),
            ("equal opportunity difference", fe["equal_opportunity_difference"]),
            (
                "four-fifths rule",
                "pass"
                if ff["passed"]
                else f"FAIL ({', '.join(ff['failing_groups']) or 'no selections'})",
            ),
        ]
        width = max(len(k) for k, _ in summary)
        lines += [""] + [f"  {k:<{width}}  {_fmt(v)}" for k, v in summary] + [""]
    drift = ev.get("drift")
    if drift:
        head = "Drift"
        lines += [head, "-" * len(head)]
        cw = max([len("column")] + [len(c) for c in drift["columns"]])
        lines.append(
            f"  {'column':<{cw}}  {'method':<14}{'statistic':>12}{'threshold':>12}  drifted"
        )
        for c, e in drift["columns"].items():
            lines.append(
                f"  {c:<{cw}}  {e['method']:<14}{_fmt(e['statistic']):>12}"
                f"{_fmt(e['threshold']):>12}  {_fmt(e['drifted'])}"
            )
        lines += [
            "",
            f"  drifted columns: {drift['number_drifted']}/{drift['number_of_columns']}"
            f" (share {drift['share_drifted']:.2f},"
            f" data set drift: {_fmt(drift['dataset_drift'])})",
            "",
        ]
    lin = ev.get("lineage")
    if lin:
        keys = (
            "model_name",
            "model_version",
            "model_sha256",
            "model_sha256_verified",
            "code_commit",
            "data_source",
            "data_sha256_verified",
            "trained_at",
            "data_age_days",
        )
        lines += _rows(
            "Lineage",
            [(k, lin[k][:16] if k == "model_sha256" and lin[k] else lin[k]) for k in keys],
        )
    doc = ev.get("documentation")
    if doc:
        lines += _rows(
            "Documentation",
            [
                ("model card", doc["model_card_present"]),
                ("completeness", f"{doc['completeness']:.0%}"),
                ("missing sections", ", ".join(doc["missing_sections"]) or "none"),
                ("explainability artefact", doc["explainability_present"]),
            ],
        )
    return "\n".join(lines)
