"""The reports a person looks at: evidently's HTML drift report for a drifted window, and
fairlearn's post-processing advice for a biased model, both checked against the libraries
themselves (evidently's verdicts against Warden's drift check on the same data, the advice's
numbers against a direct ``ThresholdOptimizer`` run), and the module's lazy imports.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.checks.drift import drift_evidence
from agent.data import ColumnReader
from agent.registry import DirectoryRegistry
from agent.reports import (
    CONSTRAINTS,
    NoReferenceDataError,
    constraint_for,
    drift_report_html,
    fairness_advice,
    report_settings,
)
from trust.errors import DataError, PolicyError, UsageError
from trust.policy.source import load_source

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "bench"))
from gen_credit_model import credit_table, write_release  # noqa: E402

STANDARD = dict(load_source(REPO / "policies" / "standard").data)


# --- the drift report -----------------------------------------------------------------------------


def window(n: int, *, shift: float, seed: int) -> pa.Table:
    """Two numerical columns (the first shifted), an integer and a categorical one."""
    rng = np.random.default_rng(seed)
    p = np.array([5, 3, 2], dtype=float)
    if shift:
        p = p[::-1]
    return pa.table({
        "income": rng.normal(50 + 10 * shift, 10, n),
        "debt_ratio": rng.uniform(0, 1, n),
        "open_accounts": rng.integers(0, 40, n),
        "region": rng.choice(["north", "south", "east"], n, p=p / p.sum()),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("drift-report")
    out = {"reference": d / "reference.parquet", "drifted": d / "drifted.parquet",
           "steady": d / "steady.csv"}
    pq.write_table(window(3000, shift=0.0, seed=1), out["reference"])
    pq.write_table(window(2000, shift=1.0, seed=2), out["drifted"])
    import pyarrow.csv as pacsv

    pacsv.write_csv(window(2000, shift=0.0, seed=3), out["steady"])
    return out


def warden_drift(reference: Path, current: Path) -> dict[str, Any]:
    return drift_evidence(ColumnReader(reference), ColumnReader(current))


def counters(html: str) -> dict[str, str]:
    """evidently's summary counters (label → value) from the report's embedded data."""
    return {m["label"]: m["value"] for m in map(
        json.loads, re.findall(r'\{"value": "[^"]*", "label": "[^"]*"\}', html))}


def test_a_drifted_window_gets_a_self_contained_html_report_with_its_digest(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    ours = warden_drift(files["reference"], files["drifted"])
    assert ours["dataset_drift"] and ours["number_drifted"] >= 2
    out = tmp_path / "cards" / "credit-risk" / "2" / "drift-report.html"
    report = drift_report_html(reference=files["reference"], current=files["drifted"], out=out,
                               **report_settings(ours))
    data = out.read_bytes()
    assert report.path == out and report.size == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.to_dict() == {"name": "drift-report.html", "sha256": report.sha256,
                                "bytes": len(data)}
    html = data.decode("utf-8")
    assert html.lstrip().startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Self-contained: the JavaScript is inline, nothing is loaded from elsewhere.
    assert "window.drawDashboard" in html and len(html) > 1_000_000
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", html)
    # evidently's verdicts on the same data are the window's.
    c = counters(html)
    assert c["Columns"] == str(ours["number_of_columns"])
    assert c["Drifted Columns"] == str(ours["number_drifted"])
    assert "Dataset Drift is detected" in html
    assert [p.name for p in out.parent.iterdir()] == ["drift-report.html"]  # no temp left


def test_a_window_given_as_a_table_and_a_steady_window(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    steady = warden_drift(files["reference"], files["steady"])
    assert not steady["dataset_drift"]
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(files["steady"])
    report = drift_report_html(reference=files["reference"], current=table,
                               out=tmp_path / "steady.html", **report_settings(steady))
    html = report.path.read_text(encoding="utf-8")
    assert counters(html)["Drifted Columns"] == str(steady["number_drifted"])
    assert "Dataset Drift is NOT detected" in html


def test_only_a_profile_means_no_html_report(tmp_path: Path, files: dict[str, Path]) -> None:
    from agent.checks.files import save_profile
    from agent.checks.profile import ReferenceProfile
    from agent.data import iter_chunks

    profile = tmp_path / "reference.profile"
    save_profile(ReferenceProfile.build(iter_chunks(files["reference"])), profile)
    out = tmp_path / "report.html"
    with pytest.raises(NoReferenceDataError, match="reference profile"):
        drift_report_html(reference=profile, current=files["drifted"], columns=["income"],
                          out=out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("columns", "current_columns", "error", "match"),
    [
        (["income", "salary"], None, DataError, "no column 'salary'"),
        (["income", "region"], ["income"], DataError, "no column 'region'"),
        ([], None, UsageError, "at least one column"),
    ],
    ids=["missing-in-reference", "missing-in-window", "no-columns"],
)
def test_bad_report_requests_write_nothing(
    tmp_path: Path, files: dict[str, Path], columns: list[str],
    current_columns: list[str] | None, error: type[Exception], match: str,
) -> None:
    current: Any = files["drifted"]
    if current_columns is not None:
        current = pq.read_table(files["drifted"], columns=current_columns)
    out = tmp_path / "report.html"
    with pytest.raises(error, match=match):
        drift_report_html(reference=files["reference"], current=current, columns=columns,
                          out=out)
    assert not out.exists()


def test_report_settings_need_per_column_results() -> None:
    with pytest.raises(DataError, match="no per-column results"):
        report_settings({"columns": {}, "dataset_drift": False})


# --- fairness advice -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Biased:
    model: Path
    features: tuple[str, ...]
    data: Path


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Biased:
    d = tmp_path_factory.mktemp("fairness-advice")
    write_release(d / "models", "credit-risk", "1", bias=0.3, rows=5000)
    mv = DirectoryRegistry(d / "models").read("credit-risk", "1")
    assert mv.manifest.features is not None
    data = d / "validation.parquet"
    pq.write_table(credit_table(3000, seed=11), data)
    return Biased(mv.artefact_path, mv.manifest.features, data)


@pytest.fixture(scope="module")
def direct(biased: Biased) -> Iterator[dict[str, Any]]:
    """fairlearn itself on the same model and rows: ThresholdOptimizer and its metrics."""
    import skops.io as sio
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )
    from fairlearn.postprocessing import ThresholdOptimizer

    est = sio.load(biased.model, trusted=sio.get_untrusted_types(file=biased.model))
    table = pq.read_table(biased.data)
    X = np.column_stack([table[c].to_numpy() for c in biased.features]).astype(float)  # noqa: N806
    y = table["repaid"].to_numpy()
    a = np.asarray(table["sex"].to_pylist(), dtype=object)
    out: dict[str, Any] = {"y": y, "a": a, "before": est.predict(X)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for constraint in ("demographic_parity", "equalized_odds"):
            opt = ThresholdOptimizer(estimator=est, constraints=constraint, prefit=True,
                                     predict_method="auto")
            opt.fit(X, y, sensitive_features=a)
            p = opt.predict(X, sensitive_features=a, random_state=0)
            out[constraint] = {
                "pred": p,
                "accuracy": float(np.mean(p == y)),
                "demographic_parity_difference":
                    demographic_parity_difference(y, p, sensitive_features=a),
                "demographic_parity_ratio": demographic_parity_ratio(y, p, sensitive_features=a),
                "equalized_odds_difference":
                    equalized_odds_difference(y, p, sensitive_features=a),
            }
    out["before_dp"] = demographic_parity_difference(y, out["before"], sensitive_features=a)
    yield out


def advise(biased: Biased, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {"model": biased.model, "data": biased.data, "label": "repaid",
                                "sensitive": "sex", "thresholds": STANDARD,
                                "features": biased.features, **kwargs}
    return fairness_advice(**settings)


@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_advice_on_a_biased_model_matches_fairlearn(
    biased: Biased, direct: dict[str, Any], constraint: str
) -> None:
    advice = advise(biased, constraint=constraint)
    theirs = direct[constraint]
    y = direct["y"]
    assert advice.rows == len(y)
    assert advice.accuracy_before == float(np.mean(direct["before"] == y))
    assert advice.accuracy_after == theirs["accuracy"]  # the same decisions, row for row
    after = advice.metrics_after
    for metric in ("demographic_parity_difference", "demographic_parity_ratio",
                   "equalized_odds_difference"):
        assert after[metric] == pytest.approx(theirs[metric], abs=1e-12), metric
    assert advice.metrics_before["demographic_parity_difference"] == pytest.approx(
        direct["before_dp"], abs=1e-12)
    # The model as trained is denied for fairness; its post-processing is not.
    assert direct["before_dp"] > STANDARD["max_demographic_parity_difference"]
    assert advice.feasible and advice.failing == ()
    assert advice.accuracy_after >= STANDARD["min_accuracy"]
    assert set(advice.checked) >= {"max_demographic_parity_difference",
                                   "max_equalized_odds_difference", "require_four_fifths_rule",
                                   "min_accuracy"}
    doc = advice.to_dict()
    assert doc["feasible"] is True and doc["constraint"] == constraint
    assert doc["method"] == "fairlearn.postprocessing.ThresholdOptimizer"
    assert "random_state=0" in doc["note"] and "'sex' at prediction time" in doc["note"]
    assert "app-" not in json.dumps(doc)  # aggregates only: no applicant id


def test_advice_is_deterministic(biased: Biased) -> None:
    assert advise(biased).to_dict() == advise(biased).to_dict()
    assert advise(biased, random_state=1).metrics_after != advise(biased).metrics_after


def test_advice_says_infeasible_when_a_threshold_stays_missed(biased: Biased) -> None:
    strict = {**STANDARD, "min_accuracy": 0.99}
    advice = advise(biased, thresholds=strict)
    assert not advice.feasible
    assert advice.failing == ("min_accuracy",)
    assert "still misses min_accuracy" in advice.note


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"constraint": "equal_happiness"}, UsageError, "unknown fairness constraint"),
        ({"objective": "selection_rate"}, UsageError, "unknown objective"),
        ({"thresholds": {"max_demographic_parity_difference": "0.05"}}, PolicyError,
         "must be a number"),
        ({"sensitive": "religion"}, DataError, "no column 'religion'"),
    ],
    ids=["constraint", "objective", "threshold-type", "missing-column"],
)
def test_bad_advice_requests(biased: Biased, kwargs: dict[str, Any], error: type[Exception],
                             match: str) -> None:
    with pytest.raises(error, match=match):
        advise(biased, **kwargs)


def test_constraint_for_the_rules_that_denied() -> None:
    assert constraint_for(["fairness.demographic_parity_difference"]) == "demographic_parity"
    assert constraint_for(["fairness.four_fifths_rule"]) == "demographic_parity"
    assert constraint_for(["fairness.equal_opportunity_difference"]) == \
        "true_positive_rate_parity"
    assert constraint_for(["fairness.demographic_parity_ratio",
                           "fairness.equalized_odds_difference"]) == "equalized_odds"
    assert set(map(constraint_for, [[], ["x"]])) <= set(CONSTRAINTS)


# --- lazy imports ------------------------------------------------------------------------------


def test_importing_the_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, agent.reports, agent.rollback\n"
        "heavy = ['evidently', 'fairlearn', 'sklearn', 'pandas', 'numpy', 'pyarrow', 'scipy',"
        " 'regopy']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
