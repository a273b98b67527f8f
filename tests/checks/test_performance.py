"""Performance metrics equal scikit-learn's, whole or streamed in chunks or merged."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from agent.checks.performance import (
    ClassificationAccumulator,
    RegressionAccumulator,
    classification_performance,
    regression_performance,
    roc_auc_exact,
)

TOL = 1e-12


def _binary(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 500))
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    s = np.round(rng.random(n), int(rng.integers(1, 4)))  # coarse scores: many ties
    return y, p, s


@pytest.mark.parametrize("seed", range(20))
def test_binary_equals_sklearn(seed: int) -> None:
    y, p, s = _binary(seed)
    if seed == 3:
        p[:] = 0  # no predicted positives: precision's zero division
    ev = classification_performance(y, p, s)
    assert ev["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=TOL)
    assert ev["precision"] == pytest.approx(skm.precision_score(y, p, zero_division=0), abs=TOL)
    assert ev["recall"] == pytest.approx(skm.recall_score(y, p, zero_division=0), abs=TOL)
    assert ev["f1"] == pytest.approx(skm.f1_score(y, p, zero_division=0), abs=TOL)
    assert ev["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p), abs=TOL)
    assert ev["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert ev["log_loss"] == pytest.approx(skm.log_loss(y, s), abs=TOL)
    tn, fp, fn, tp = skm.confusion_matrix(y, p, labels=[0, 1]).ravel()
    assert ev["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_log_loss_clips_like_sklearn() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.0, 1.0, 1.0, 0.0])
    assert classification_performance(y, y, s)["log_loss"] == pytest.approx(
        skm.log_loss(y, s), rel=1e-12
    )


def test_single_class_has_no_auc() -> None:
    ev = classification_performance(
        np.ones(5, dtype=int), np.ones(5, dtype=int), np.linspace(0, 1, 5)
    )
    assert ev["roc_auc"] is None


@pytest.mark.parametrize("seed", range(10))
def test_multiclass_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, k = int(rng.integers(30, 400)), int(rng.integers(3, 6))
    y, p = rng.integers(0, k, n), rng.integers(0, k, n)
    y[:k] = np.arange(k)  # every class present so ROC AUC is defined
    proba = rng.random((n, k))
    proba /= proba.sum(axis=1, keepdims=True)
    labels = list(range(k))
    ev = classification_performance(y, p, proba, task="multiclass", classes=labels)
    assert ev["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=TOL)
    for avg in ("macro", "weighted"):
        for name, fn in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            want = fn(y, p, average=avg, zero_division=0, labels=labels)
            assert ev[f"{name}_{avg}"] == pytest.approx(want, abs=TOL), (name, avg)
    assert ev["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels), abs=TOL)
    want_auc = skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
    assert ev["roc_auc_ovr_macro"] == pytest.approx(want_auc, abs=TOL)
    assert ev["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, p, labels=labels).tolist()


def test_multiclass_string_labels_union_of_true_and_predicted() -> None:
    rng = np.random.default_rng(7)
    y = np.array(["x", "y", "z"])[rng.integers(0, 3, 200)].astype(object)
    p = np.array(["x", "y", "w"])[rng.integers(0, 3, 200)].astype(object)
    ev = classification_performance(y, p, task="multiclass")
    assert ev["classes"] == ["w", "x", "y", "z"]
    assert ev["f1_macro"] == pytest.approx(
        skm.f1_score(y, p, average="macro", zero_division=0), abs=TOL
    )
    assert ev["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, p).tolist()


@pytest.mark.parametrize("seed", range(8))
def test_regression_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(2, 1000))
    y = rng.normal(size=n) * 10 + 3
    p = y + rng.normal(size=n)
    ev = regression_performance(y, p)
    assert ev["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=TOL)
    assert ev["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p), rel=TOL)
    assert ev["r2"] == pytest.approx(skm.r2_score(y, p), abs=1e-11)


def test_regression_constant_target_follows_sklearn() -> None:
    y = np.full(10, 2.0)
    assert regression_performance(y, y)["r2"] == skm.r2_score(y, y) == 1.0
    assert regression_performance(y, y + 1)["r2"] == skm.r2_score(y, y + 1) == 0.0


def test_chunked_and_merged_equal_whole() -> None:
    rng = np.random.default_rng(3)
    n = 10_000
    y, p, s = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.random(n)
    whole = classification_performance(y, p, s)
    acc = ClassificationAccumulator()
    for i in range(0, n, 999):
        acc.update(y[i : i + 999], p[i : i + 999], s[i : i + 999])
    chunked = acc.evidence()
    a, b = ClassificationAccumulator(), ClassificationAccumulator()
    a.update(y[:4000], p[:4000], s[:4000])
    b.update(y[4000:], p[4000:], s[4000:])
    merged = a.merge(b).evidence()
    for ev in (chunked, merged):
        for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"):
            assert ev[k] == whole[k], k
        assert ev["log_loss"] == pytest.approx(whole["log_loss"], rel=1e-13)
    yr, pr = rng.normal(size=n), rng.normal(size=n)
    r1, r2 = RegressionAccumulator(), RegressionAccumulator()
    r1.update(yr[:3333], pr[:3333])
    r2.update(yr[3333:], pr[3333:])
    m = r1.merge(r2).evidence()
    w = regression_performance(yr, pr)
    for k in ("mae", "rmse", "r2"):
        assert m[k] == pytest.approx(w[k], rel=1e-12)


def test_roc_auc_exact_with_all_ties_is_half() -> None:
    y = np.array([0, 1, 0, 1])
    assert roc_auc_exact(y, np.zeros(4)) == 0.5 == skm.roc_auc_score(y, np.zeros(4))


def test_unknown_class_with_fixed_classes_is_an_error() -> None:
    from trust.errors import CheckError

    acc = ClassificationAccumulator("multiclass", classes=["a", "b"])
    with pytest.raises(CheckError, match="'c'"):
        acc.update(np.array(["a", "c"], dtype=object), np.array(["a", "b"], dtype=object))
