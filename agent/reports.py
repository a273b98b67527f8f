"""What a person wants to look at after an alert or a block (issue 11 item 9): evidently's
HTML drift report for the window that drifted, and fairlearn's advice on whether a
post-processing exists that would meet the policy's fairness thresholds.

Both are optional extras (``warden[reports]``: evidently 0.7.23, fairlearn) and heavy:
importing this module imports neither them nor NumPy, pandas or pyarrow; each function
imports what it needs when it runs, and the daemon calls them only when an alert or a
fairness block asks for one.

:func:`drift_report_html` writes ``Report([DataDriftPreset()])`` for the same columns,
column types, methods and thresholds the window's drift check used (:func:`report_settings`
reads them from the window's drift evidence), so its verdicts are the window's. The file is
self-contained: evidently 0.7's ``save_html`` template embeds its JavaScript bundle (with
plotly) and its icon font inline, about 3.6 MB, and loads nothing from a CDN (plotly's
built-in default ``topojsonURL`` points at cdn.plot.ly, used only by geographic maps, which
a drift report has none of), and evidently sends no telemetry from a report. **The report
stays at the node**: it holds per-column histograms whose first and last bin edges are each
column's minimum and maximum — values of single rows — and every category's count; only its
SHA-256 goes in a record.

:func:`fairness_advice` fits fairlearn's ``ThresholdOptimizer`` (``prefit=True``,
``predict_method="auto"``) on the version's own model over the node's validation data,
predicts with a fixed ``random_state`` and measures the post-processed decisions with the
very code the checks use (:mod:`agent.checks.fairness`), then compares them with the
policy's thresholds (``data.config``) the way the standard library's rules do. The
:class:`Advice` holds aggregates only.

Invariants: files are written atomically (temporary file beside, rename), and the digest is
that of the exact bytes written; both functions are deterministic for the same inputs except
the report's HTML, in which evidently embeds random widget ids (so its digest is the file's,
not a function of the data); a failure is a typed :class:`~trust.errors.WardenError`
(:class:`NoReferenceDataError` when only a profile exists), never a half-written file.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.formats import data_format
from trust._internal.files import replace_file
from trust.canonical import Sha256
from trust.errors import (
    CheckError,
    DataError,
    PolicyError,
    StorageFullError,
    StorageUnavailableError,
    UsageError,
    WardenError,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa

    from agent.predict import Model

__all__ = [
    "CONSTRAINTS",
    "Advice",
    "NoReferenceDataError",
    "ReportFile",
    "constraint_for",
    "drift_report_html",
    "fairness_advice",
    "report_settings",
]


class NoReferenceDataError(CheckError):
    """The reference is a Warden profile (statistics only): evidently needs the rows.

    Raised by :func:`drift_report_html`; the daemon records the alert without an HTML
    report (and may say so), it does not fail the window.
    """


@dataclass(frozen=True)
class ReportFile:
    """A report written at the node: where, and the SHA-256 of its exact bytes."""

    path: Path
    sha256: Sha256
    size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form for a record (the file's name, not its directory: it stays here)."""
        return {"name": self.path.name, "sha256": self.sha256, "bytes": self.size}


# -- evidently's drift report ---------------------------------------------------------------------


def report_settings(drift: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments that make :func:`drift_report_html` judge what the window's
    drift evidence (``warden.evidence/v1`` ``drift`` section) judged: ``columns``,
    ``column_types``, ``methods``, ``thresholds`` and ``drift_share``.

    Raises :class:`~trust.errors.DataError` for evidence without per-column entries.
    """
    columns = drift.get("columns")
    if not isinstance(columns, Mapping) or not columns:
        raise DataError("drift evidence has no per-column results to report on")
    types: dict[str, str] = {}
    methods: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for name, entry in columns.items():
        if not isinstance(entry, Mapping):
            raise DataError(f"drift evidence: column {name!r} is not an object")
        if entry.get("column_type") in ("num", "cat"):
            types[name] = entry["column_type"]
        if isinstance(entry.get("method"), str):
            methods[name] = entry["method"]
        value = entry.get("threshold")
        if isinstance(value, int | float) and not isinstance(value, bool):
            thresholds[name] = float(value)
    share = drift.get("drift_share", 0.5)
    return {"columns": list(columns), "column_types": types, "methods": methods,
            "thresholds": thresholds,
            "drift_share": float(share) if isinstance(share, int | float) else 0.5}


def _is_profile(path: Path) -> bool:
    from agent.checks.files import load_profile

    try:
        load_profile(path)
    except WardenError:
        return False
    return True


def _reference_columns(reference: Path, columns: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    from agent import data as datamod

    if data_format(reference.name) is None:
        if reference.is_file() and _is_profile(reference):
            raise NoReferenceDataError(
                f"{reference}: is a reference profile (statistics only); evidently's HTML "
                "drift report needs the reference rows",
                hint="set the model's reference to a data file (CSV/Parquet) to get HTML "
                "drift reports; drift itself is still checked against the profile",
            )
        raise DataError(f"{reference}: not a CSV or Parquet data file; no HTML drift report "
                        "can be made from it")
    return datamod.read_columns(reference, list(columns))


def _current_columns(
    current: Path | pa.Table, columns: Sequence[str]
) -> dict[str, npt.NDArray[Any]]:
    from agent import data as datamod

    if isinstance(current, Path | str):
        return datamod.read_columns(Path(current), list(columns))
    from agent.columns import check_columns, to_numpy

    where = Path("<current window>")
    check_columns(where, list(columns), list(current.column_names))
    if current.num_rows == 0:
        raise DataError("the current window has no rows")
    out: dict[str, npt.NDArray[Any]] = {}
    for name in columns:
        try:
            out[name] = to_numpy(current.column(name))
        except DataError as exc:
            raise DataError(f"{where}: {exc.message}") from None
    return out


def _write(out: Path, data: bytes, what: str) -> ReportFile:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        replace_file(out, data)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"{out}: cannot write the {what} ({reason})") from None
        raise StorageUnavailableError(f"{out}: cannot write the {what} ({reason})") from None
    return ReportFile(out, Sha256(hashlib.sha256(data).hexdigest()), len(data))


def drift_report_html(
    *,
    reference: Path,
    current: Path | pa.Table,
    columns: Sequence[str],
    out: Path,
    column_types: Mapping[str, str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> ReportFile:
    """Write evidently's HTML data drift report of ``current`` against ``reference`` to
    ``out`` (atomically) and return its path and digest.

    ``reference`` is the model's reference *data* file (``ModelConfig.reference``): a
    Warden profile holds statistics, not rows, and raises :class:`NoReferenceDataError`.
    ``current`` is the window's data: a file, or the window's batches as one Arrow table.
    ``column_types`` (``"num"``/``"cat"``), ``methods``, ``thresholds`` and
    ``drift_share`` are those of the window's drift check (:func:`report_settings`);
    a column without a declared type gets the one Warden's drift check infers from the
    current data, so evidently never classifies a column differently. Memory and time are
    evidently's (pandas frames of both sides; about a minute per million rows).
    """
    if not columns:
        raise UsageError("a drift report needs at least one column")
    ref = _reference_columns(reference, columns)
    cur = _current_columns(current, columns)

    import pandas as pd

    from agent.checks.drift import resolve_column_type

    types = {c: resolve_column_type(c, cur[c], column_types) for c in columns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently and pandas are chatty on perfectly good data
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(
            numerical_columns=[c for c in columns if types[c] == "num"],
            categorical_columns=[c for c in columns if types[c] == "cat"],
        )
        preset = DataDriftPreset(
            columns=list(columns), drift_share=drift_share,
            per_column_method=dict(methods) if methods else None,
            per_column_threshold=dict(thresholds) if thresholds else None,
        )
        try:
            snapshot = Report([preset], include_tests=True).run(
                Dataset.from_pandas(pd.DataFrame(cur), data_definition=definition),
                Dataset.from_pandas(pd.DataFrame(ref), data_definition=definition),
            )
            html = snapshot.get_html_str(as_iframe=False)
        except Exception as exc:  # noqa: BLE001 - evidently raises many kinds on odd data
            raise CheckError(
                f"evidently could not build the drift report of {reference} vs the current "
                f"window ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    return _write(out, html.encode("utf-8"), "drift report")


# -- fairlearn's post-processing advice ----------------------------------------------------------

#: The constraints fairlearn's ThresholdOptimizer accepts.
CONSTRAINTS = (
    "demographic_parity",
    "selection_rate_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "true_negative_rate_parity",
    "false_negative_rate_parity",
)
_OBJECTIVES = ("accuracy_score", "balanced_accuracy_score")

# policy setting -> (metric in the measured dict, "max" | "min" | "true")
_GATES: dict[str, tuple[str, str]] = {
    "max_demographic_parity_difference": ("demographic_parity_difference", "max"),
    "min_demographic_parity_ratio": ("demographic_parity_ratio", "min"),
    "max_equalized_odds_difference": ("equalized_odds_difference", "max"),
    "max_equal_opportunity_difference": ("equal_opportunity_difference", "max"),
    "require_four_fifths_rule": ("four_fifths_passed", "true"),
    "min_accuracy": ("accuracy", "min"),
    "min_precision": ("precision", "min"),
    "min_recall": ("recall", "min"),
    "min_f1": ("f1", "min"),
}


def constraint_for(rules: Sequence[str]) -> str:
    """The ThresholdOptimizer constraint that addresses the fairness rules that denied.

    Equalized odds when its rule fired (it also equalises true positive rates), true
    positive rate parity when only equal opportunity did, demographic parity otherwise
    (its difference, ratio and the four-fifths rule are all about selection rates).
    """
    fired = set(rules)
    if "fairness.equalized_odds_difference" in fired:
        return "equalized_odds"
    if "fairness.equal_opportunity_difference" in fired and not fired & {
        "fairness.demographic_parity_difference", "fairness.demographic_parity_ratio",
        "fairness.four_fifths_rule",
    }:
        return "true_positive_rate_parity"
    return "demographic_parity"


@dataclass(frozen=True)
class Advice:
    """Whether post-processing can make the model meet the policy, and at what accuracy.

    ``metrics_before`` / ``metrics_after`` hold the gated metrics of the model's own and the
    post-processed decisions on the node's validation data (``None`` where not measurable);
    ``failing`` names each policy setting the post-processed decisions still miss, and
    ``feasible`` is true when none does. Aggregates only.
    """

    method: str
    constraint: str
    objective: str
    sensitive: str
    feasible: bool
    accuracy_before: float
    accuracy_after: float
    metrics_before: Mapping[str, float | bool | None]
    metrics_after: Mapping[str, float | bool | None]
    failing: tuple[str, ...]
    rows: int
    random_state: int
    note: str
    checked: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for the record and the model card)."""
        return {
            "method": self.method,
            "constraint": self.constraint,
            "objective": self.objective,
            "sensitive_feature": self.sensitive,
            "feasible": self.feasible,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "metrics_before": dict(self.metrics_before),
            "metrics_after": dict(self.metrics_after),
            "thresholds_checked": list(self.checked),
            "failing": list(self.failing),
            "rows": self.rows,
            "random_state": self.random_state,
            "note": self.note,
        }


def _number(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return None if math.isnan(value) or math.isinf(value) else value


def _measure(y: npt.NDArray[Any], pred: npt.NDArray[Any], groups: npt.NDArray[Any],
             sensitive: str, min_group_size: int) -> dict[str, float | bool | None]:
    """The gated metrics of ``pred``, computed by the checks' own code."""
    import numpy as np

    from agent.checks.fairness import FairnessCounts, fairness_evidence

    counts = FairnessCounts.from_arrays(y, pred, {sensitive: groups})
    ev = fairness_evidence(counts, min_group_size=min_group_size)
    tn, fp, fn, tp = (float(v) for v in counts.total)
    n = tn + fp + fn + tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": float(np.mean(y == pred)) if n else None,
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "selection_rate": (tp + fp) / n if n else None,
        "demographic_parity_difference": _number(ev["demographic_parity_difference"]),
        "demographic_parity_ratio": _number(ev["demographic_parity_ratio"]),
        "equalized_odds_difference": _number(ev["equalized_odds_difference"]),
        "equal_opportunity_difference": _number(ev["equal_opportunity_difference"]),
        "four_fifths_passed": ev["four_fifths"]["passed"],
    }


def _gates(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """The configured settings this advice can check, their values type-checked."""
    out: dict[str, Any] = {}
    for key, (_, kind) in _GATES.items():
        value = thresholds.get(key)
        if value is None:
            continue
        if kind == "true":
            if not isinstance(value, bool):
                raise PolicyError(f"policy data.config.{key} must be true or false, "
                                  f"got {value!r}")
            if value:
                out[key] = True
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value
        ):
            raise PolicyError(f"policy data.config.{key} must be a number, got {value!r}")
        out[key] = float(value)
    return out


def _failing(metrics: Mapping[str, float | bool | None], gates: Mapping[str, Any]) -> list[str]:
    """Settings not met, read as the standard library's rules read them (a missing metric
    fails: missing evidence never passes)."""
    failing = []
    for key, limit in gates.items():
        metric, kind = _GATES[key]
        value = metrics.get(metric)
        if kind == "true":
            ok = value is True
        elif value is None or isinstance(value, bool):
            ok = False
        else:
            ok = value <= limit if kind == "max" else value >= limit
        if not ok:
            failing.append(key)
    return failing


@functools.cache
def _estimator_classes() -> tuple[type[Any], type[Any]]:
    """The version's loaded model as the scikit-learn estimator fairlearn expects, already
    fitted (``prefit=True``): ``predict`` gives its 0/1 decisions, and for a model with
    probabilities ``predict_proba`` its scores (fairlearn's ``auto`` then uses them).
    Defined on first use: scikit-learn is imported only when advice is asked for."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scorer(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        def __init__(self, model: Model, pos_label: Any, source: Path) -> None:
            self.model, self.pos_label, self.source = model, pos_label, source

        def __sklearn_is_fitted__(self) -> bool:
            return True

        def fit(self, X: Any, y: Any, **kwargs: Any) -> Scorer:  # noqa: N803 - sklearn's names
            return self  # prefit: never refitted

        def _run(self, X: Any) -> tuple[Any, Any]:  # noqa: N803
            from agent import data as datamod
            from agent.predict import predict_checked

            raw, score = predict_checked(self.model, {c: X[c].to_numpy() for c in X.columns},
                                         pos_label=self.pos_label)
            pred = datamod.binary_labels(raw, column=f"prediction of {self.model.path}",
                                         source=self.source, pos_label=self.pos_label)
            return pred, score

        def predict(self, X: Any) -> Any:  # noqa: N803
            return self._run(X)[0]

    class ProbaScorer(Scorer):
        def predict_proba(self, X: Any) -> Any:  # noqa: N803
            import numpy as np

            score = self._run(X)[1]
            return np.column_stack([1.0 - score, score])

    return Scorer, ProbaScorer


def fairness_advice(
    *,
    model: Path | Model,
    data: Path,
    label: str,
    sensitive: str,
    thresholds: Mapping[str, Any],
    constraint: str = "demographic_parity",
    objective: str = "accuracy_score",
    pos_label: str | None = None,
    features: Sequence[str] | None = None,
    trust_pickle: bool = False,
    min_group_size: int = 0,
    grid_size: int = 1000,
    random_state: int = 0,
) -> Advice:
    """Whether fairlearn's ``ThresholdOptimizer`` finds a post-processing of ``model`` that
    meets the policy's ``thresholds`` (the bundle's ``data``: ``max_demographic_parity_
    difference``, ``min_demographic_parity_ratio``, ``max_equalized_odds_difference``,
    ``max_equal_opportunity_difference``, ``require_four_fifths_rule``, and the
    performance minimums ``min_accuracy``/``precision``/``recall``/``f1``), and at what
    accuracy, on the node's validation ``data`` with groups from its ``sensitive`` column.

    ``model`` is the version's artefact (loaded as the checks load it: ``features`` when the
    model does not name its columns, ``trust_pickle`` for ``.joblib``) or an already loaded
    :class:`agent.predict.Model`; a predictions artefact has no model to post-process.
    ``constraint`` is one of :data:`CONSTRAINTS` (:func:`constraint_for` picks it from the
    rules that denied). The optimizer is fitted and evaluated on the same rows; the
    randomised thresholds are drawn with ``random_state``, so the advice is reproducible.
    ``min_roc_auc`` is not re-checked: post-processed decisions have no scores.

    Raises :class:`~trust.errors.UsageError` for an unknown constraint or objective, and
    :class:`~trust.errors.CheckError` when fairlearn cannot fit (e.g. a group whose labels
    are all one class); data errors name the file and column.
    """
    if constraint not in CONSTRAINTS:
        raise UsageError(f"unknown fairness constraint {constraint!r}",
                         hint="one of " + ", ".join(CONSTRAINTS))
    if objective not in _OBJECTIVES:
        raise UsageError(f"unknown objective {objective!r}", hint="one of "
                         + ", ".join(_OBJECTIVES))
    gates = _gates(thresholds)

    import numpy as np
    import pandas as pd

    from agent import data as datamod
    from agent.predict import Model, load_model, predict_checked

    loaded = model if isinstance(model, Model) else load_model(model, trusted_pickle=trust_pickle)
    if features:
        loaded = loaded.with_features(features)
    if loaded.feature_names is None:
        raise UsageError(f"{loaded.path}: cannot tell which columns are the model's features",
                         hint="pass the manifest's model.features")
    if sensitive == label:
        raise UsageError(f"{sensitive!r} is both the label and the sensitive feature")
    wanted = list(dict.fromkeys([*loaded.feature_names, label, sensitive]))
    columns = datamod.read_columns(data, wanted)
    y = datamod.binary_labels(columns[label], column=label, source=data, pos_label=pos_label)
    groups = datamod.group_labels(columns[sensitive])
    X = pd.DataFrame({c: columns[c] for c in loaded.feature_names})  # noqa: N806
    if pos_label is not None:
        loaded.positive_index(pos_label)  # refuse an unknown class before predicting
    probe = predict_checked(loaded, {c: columns[c][:1] for c in loaded.feature_names},
                            pos_label=pos_label)[1]
    scorer, proba_scorer = _estimator_classes()
    estimator = (proba_scorer if probe is not None and np.ndim(probe) == 1 else scorer)(
        loaded, pos_label, data)
    before = estimator.predict(X)

    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(estimator=estimator, constraints=constraint,
                                   objective=objective, grid_size=grid_size, prefit=True,
                                   predict_method="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optimizer.fit(X, y, sensitive_features=groups)
            after = np.asarray(optimizer.predict(X, sensitive_features=groups,
                                                 random_state=random_state))
        except ValueError as exc:
            raise CheckError(
                f"{data}: fairlearn's ThresholdOptimizer cannot post-process the model for "
                f"{sensitive!r} ({str(exc).splitlines()[0] if str(exc) else 'ValueError'})"
            ) from None
    metrics_before = _measure(y, before, groups, sensitive, min_group_size)
    metrics_after = _measure(y, after.astype(np.int8), groups, sensitive, min_group_size)
    failing = _failing(metrics_after, gates)
    feasible = not failing
    acc_before, acc_after = metrics_before["accuracy"], metrics_after["accuracy"]
    assert isinstance(acc_before, float) and isinstance(acc_after, float)
    verdict = (
        f"the {constraint.replace('_', ' ')} post-processing meets every threshold checked at "
        f"accuracy {acc_after:.4f} (model: {acc_before:.4f})" if feasible else
        f"the {constraint.replace('_', ' ')} post-processing still misses "
        f"{', '.join(failing)} (accuracy {acc_after:.4f}; model: {acc_before:.4f})"
    )
    note = (
        f"{verdict}. Fitted and measured on the same {len(y)} validation rows of this node "
        f"(in-sample: optimistic for new data); randomised group thresholds drawn with "
        f"random_state={random_state}. Applying it needs the sensitive feature "
        f"{sensitive!r} at prediction time."
        + ("" if "min_roc_auc" not in thresholds or thresholds.get("min_roc_auc") is None
           else " min_roc_auc is not checked: post-processed decisions have no scores.")
    )
    return Advice(
        method="fairlearn.postprocessing.ThresholdOptimizer",
        constraint=constraint, objective=objective, sensitive=sensitive, feasible=feasible,
        accuracy_before=acc_before, accuracy_after=acc_after,
        metrics_before=metrics_before, metrics_after=metrics_after, failing=tuple(failing),
        rows=len(y), random_state=random_state, note=note, checked=tuple(gates),
    )

